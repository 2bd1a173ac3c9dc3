"""The API's routes, included by audit.urls under api/ (so /auditor/api/... in a host that
mounts the audit app under auditor/)."""

from django.urls import path

from . import views

app_name = "api"

urlpatterns = [
    path("conversations/", views.ConversationList.as_view(), name="conversations"),
    path("conversations/<int:pk>/", views.ConversationDetail.as_view(), name="conversation"),
    path("messages/", views.MessageList.as_view(), name="messages"),
    path("handoffs/", views.HandoffList.as_view(), name="handoffs"),
    path("handoffs/<int:pk>/", views.HandoffDetail.as_view(), name="handoff"),
    path("flags/", views.FlagList.as_view(), name="flags"),
    path("flags/<int:pk>/", views.FlagDetail.as_view(), name="flag"),
    path("flags/<int:pk>/status/", views.FlagStatus.as_view(), name="flag_status"),
    path("scores/", views.ScoreList.as_view(), name="scores"),
    path("metrics/handoffs/", views.HandoffMetricsView.as_view(), name="handoff_metrics"),
    path("schema/", views.SchemaView.as_view(), name="schema"),
    path("docs/", views.SwaggerView.as_view(url_name="audit:api:schema"), name="docs"),
    path("redoc/", views.RedocView.as_view(url_name="audit:api:schema"), name="redoc"),
]
