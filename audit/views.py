from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from conversations.selectors import conversation_list, status_events_waiting


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Landing page after sign-in: the latest conversations (the full inbox comes later)."""
    conversations = conversation_list()[:50]
    return render(
        request,
        "audit/home.html",
        {"conversations": conversations, "waiting_statuses": status_events_waiting().count()},
    )
