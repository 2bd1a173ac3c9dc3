from django.urls import include, path

from . import dashboards, views

app_name = "audit"

urlpatterns = [
    path("", views.inbox, name="home"),
    path("inbox/", views.inbox, name="inbox"),
    path("conversations/<int:conversation_id>/", views.replay, name="replay"),
    path("conversations/<int:conversation_id>/raw/", views.raw_events, name="raw_events"),
    path("flags/<int:flag_id>/status/", views.flag_status, name="flag_status"),
    path("api/", include("audit.api.urls")),
    path("dashboards/", dashboards.dashboards, name="dashboards"),
    path("export.csv", dashboards.export_csv, name="export_csv"),
]
