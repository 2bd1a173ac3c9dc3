"""The customer pages: the list with the journey metric, and one customer's timeline."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from conversations.flag_text import flag_summary
from conversations.models import Customer

from .access_log import pii_viewed
from .customer_selectors import channel_switch_metric, customer_timeline, customers_list
from .roles import VIEW
from .views import _viewer, requires


@require_GET
@requires(VIEW)
def customers(request: HttpRequest) -> HttpResponse:
    return render(request, "audit/customers.html", {
        "customers": customers_list(), "metric": channel_switch_metric(),
        **_viewer(request)})


@require_GET
@requires(VIEW)
def customer(request: HttpRequest, customer_id: int) -> HttpResponse:
    person = get_object_or_404(Customer, pk=customer_id)
    timeline = customer_timeline(customer=person)
    for _, kind, row in timeline.entries:
        if kind == "flag":
            row.sentence = flag_summary(row)
    response = render(request, "audit/customer.html", {
        "person": person, "timeline": timeline,
        "identities": person.identities.order_by("kind", "value"), **_viewer(request)})
    pii_viewed(request=request, what="customer page", objects_label=f"customer #{person.pk}")
    return response
