"""The alert pages' routes, included by audit.urls under alerts/."""

from django.urls import path

from . import alerts_views as v

urlpatterns = [
    path("", v.alerts, name="alerts"),
    path("<int:alert_id>/", v.alert, name="alert"),
    path("<int:alert_id>/action/", v.alert_action, name="alert_action"),
    path("rules/", v.rules, name="alert_rules"),
    path("rules/new/", v.rule_edit, name="alert_rule_new"),
    path("rules/<int:rule_id>/edit/", v.rule_edit, name="alert_rule_edit"),
    path("destinations/", v.destinations, name="alert_destinations"),
    path("destinations/<int:destination_id>/edit/", v.destinations,
         name="alert_destination_edit"),
    path("destinations/<int:destination_id>/test/", v.destination_send_test,
         name="alert_destination_test"),
    path("deliveries/<int:delivery_id>/retry/", v.delivery_retry_view,
         name="alert_delivery_retry"),
]
