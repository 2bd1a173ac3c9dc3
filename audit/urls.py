from django.urls import include, path

from . import access_views, customer_views, dashboards, qa_views, reports, today_views, views

app_name = "audit"

urlpatterns = [
    path("", today_views.today, name="home"),
    path("today/", today_views.today, name="today"),
    path("inbox/", views.inbox, name="inbox"),
    path("conversations/<int:conversation_id>/", views.replay, name="replay"),
    path("conversations/<int:conversation_id>/raw/", views.raw_events, name="raw_events"),
    path("customers/", customer_views.customers, name="customers"),
    path("access-log/", access_views.access_log, name="access_log"),
    path("customers/<int:customer_id>/", customer_views.customer, name="customer"),
    path("flags/<int:flag_id>/status/", views.flag_status, name="flag_status"),
    path("api/", include("audit.api.urls")),
    path("alerts/", include("audit.alerts_urls")),
    path("dashboards/", dashboards.dashboards, name="dashboards"),
    path("export.csv", dashboards.export_csv, name="export_csv"),
    path("reports/", reports.outcomes, name="reports"),
    path("reports/per/<str:kind>/", reports.groups, name="report_groups"),
    path("reports/compare/", reports.compare, name="report_compare"),
    path("reports/qa/", reports.qa, name="report_qa"),
    path("reports/report.csv", reports.report_csv, name="report_csv"),
    path("conversations/<int:conversation_id>/review/", qa_views.review_save,
         name="review_save"),
    path("qa/", qa_views.queues, name="qa_queues"),
    path("qa/queues/new/", qa_views.queue_edit, name="qa_queue_new"),
    path("qa/queues/<int:queue_id>/edit/", qa_views.queue_edit, name="qa_queue_edit"),
    path("qa/queues/<int:queue_id>/next/", qa_views.take_next, name="qa_take_next"),
    path("qa/queues/<int:queue_id>/fill/", qa_views.fill_now, name="qa_fill"),
    path("qa/agreement/", qa_views.agreement, name="qa_agreement"),
    path("qa/reviews.csv", qa_views.reviews_csv, name="qa_reviews_csv"),
]
