from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from audit.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Sign-in, sign-out, password change; password reset only where mail can be sent.
    path("accounts/", include("django.contrib.auth.urls") if settings.PASSWORD_RESET_ENABLED
         else include([
             path("login/", auth_views.LoginView.as_view(), name="login"),
             path("logout/", auth_views.LogoutView.as_view(), name="logout"),
             path("password_change/", auth_views.PasswordChangeView.as_view(),
                  name="password_change"),
             path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(),
                  name="password_change_done"),
         ])),
    path("hooks/", include("channels.urls")),
    path("", include("audit.urls")),
]
