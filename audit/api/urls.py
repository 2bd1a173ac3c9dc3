"""The API's routes, included by audit.urls under api/ (so /auditor/api/... in a host that
mounts the audit app under auditor/)."""

from django.urls import path, re_path, register_converter

from . import access, alerts, brands, qa, quality, reports, views


class SignedInt:
    """An id as any integer, so a negative or huge one reaches the view and is answered
    with the API's JSON 404 (not the host's HTML one)."""

    regex = r"-?[0-9]+"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(SignedInt, "auditor_id")


app_name = "api"

urlpatterns = [
    path("conversations/", views.ConversationList.as_view(), name="conversations"),
    path("conversations/<auditor_id:pk>/", views.ConversationDetail.as_view(), name="conversation"),
    path("messages/", views.MessageList.as_view(), name="messages"),
    path("handoffs/", views.HandoffList.as_view(), name="handoffs"),
    path("handoffs/<auditor_id:pk>/", views.HandoffDetail.as_view(), name="handoff"),
    path("flags/", views.FlagList.as_view(), name="flags"),
    path("flags/<auditor_id:pk>/", views.FlagDetail.as_view(), name="flag"),
    path("flags/<auditor_id:pk>/status/", views.FlagStatus.as_view(), name="flag_status"),
    path("flags/<auditor_id:pk>/triage/", views.FlagTriage.as_view(), name="flag_triage"),
    path("scores/", views.ScoreList.as_view(), name="scores"),
    # Any integer reaches the view, so an id that is no brand gets the API's JSON 404.
    re_path(r"^brands/(?P<pk>-?\d+)/examples/$", brands.BrandExampleList.as_view(),
            name="brand_examples"),
    re_path(r"^brands/(?P<pk>-?\d+)/calibration/$", brands.BrandCalibrationView.as_view(),
            name="brand_calibration"),
    path("qa/queues/", qa.QueueList.as_view(), name="qa_queues"),
    path("qa/queues/<auditor_id:pk>/", qa.QueueDetail.as_view(), name="qa_queue"),
    path("qa/queues/<auditor_id:pk>/take-next/", qa.QueueTakeNext.as_view(), name="qa_take_next"),
    path("qa/reviews/", qa.ReviewList.as_view(), name="qa_reviews"),
    path("qa/reviews/<auditor_id:pk>/", qa.ReviewDetail.as_view(), name="qa_review"),
    path("metrics/handoffs/", views.HandoffMetricsView.as_view(), name="handoff_metrics"),
    path("metrics/quality/", quality.QualityMetricsView.as_view(), name="quality_metrics"),
    path("access-log/", access.AccessLogList.as_view(), name="access_log"),
    path("alerts/", alerts.AlertList.as_view(), name="alerts"),
    path("alerts/<auditor_id:pk>/", alerts.AlertDetail.as_view(), name="alert"),
    path("alerts/<auditor_id:pk>/action/", alerts.AlertAction.as_view(), name="alert_action"),
    path("alert-rules/", alerts.RuleList.as_view(), name="alert_rules"),
    path("alert-rules/<auditor_id:pk>/", alerts.RuleDetail.as_view(), name="alert_rule"),
    path("reports/outcomes/", reports.OutcomeReportView.as_view(), name="report_outcomes"),
    path("reports/groups/", reports.OutcomeGroupsView.as_view(), name="report_groups"),
    path("reports/compare/", reports.OutcomeCompareView.as_view(), name="report_compare"),
    path("reports/qa/", reports.QAResultsView.as_view(), name="report_qa"),
    path("schema/", views.SchemaView.as_view(), name="schema"),
    path("docs/", views.SwaggerView.as_view(url_name="audit:api:schema"), name="docs"),
    path("redoc/", views.RedocView.as_view(url_name="audit:api:schema"), name="redoc"),
    path("redoc/redoc.standalone.js", views.redoc_bundle, name="redoc_bundle"),
]
