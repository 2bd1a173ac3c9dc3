"""The API's routes, included by audit.urls under api/ (so /auditor/api/... in a host that
mounts the audit app under auditor/)."""

from django.urls import path

from . import qa, reports, views

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
    path("qa/queues/", qa.QueueList.as_view(), name="qa_queues"),
    path("qa/queues/<int:pk>/", qa.QueueDetail.as_view(), name="qa_queue"),
    path("qa/queues/<int:pk>/take-next/", qa.QueueTakeNext.as_view(), name="qa_take_next"),
    path("qa/reviews/", qa.ReviewList.as_view(), name="qa_reviews"),
    path("qa/reviews/<int:pk>/", qa.ReviewDetail.as_view(), name="qa_review"),
    path("metrics/handoffs/", views.HandoffMetricsView.as_view(), name="handoff_metrics"),
    path("reports/outcomes/", reports.OutcomeReportView.as_view(), name="report_outcomes"),
    path("reports/groups/", reports.OutcomeGroupsView.as_view(), name="report_groups"),
    path("reports/compare/", reports.OutcomeCompareView.as_view(), name="report_compare"),
    path("reports/qa/", reports.QAResultsView.as_view(), name="report_qa"),
    path("schema/", views.SchemaView.as_view(), name="schema"),
    path("docs/", views.SwaggerView.as_view(url_name="audit:api:schema"), name="docs"),
    path("redoc/", views.RedocView.as_view(url_name="audit:api:schema"), name="redoc"),
]
