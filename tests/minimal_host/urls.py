from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("hooks/", include("channels.urls")),
    path("auditor/", include("audit.urls")),
]
