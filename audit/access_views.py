"""The access log page (managers): who opened raw events and unmasked personal data."""

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from .access_log import AccessFilters, Kind, access_entries, access_sentence
from .api.filters import DayField, period_check
from .roles import ACCESS_LOG
from .views import _viewer, requires

PAGE = 100


class AccessLogForm(forms.Form):
    user = forms.CharField(required=False, max_length=150, label="Who")
    kind = forms.ChoiceField(required=False, label="What",
                             choices=[("", "anything"), *Kind.choices])
    since = DayField(required=False, label="From",
                     widget=forms.DateInput(attrs={"type": "date"}))
    until = DayField(required=False, label="Until",
                     widget=forms.DateInput(attrs={"type": "date"}))
    conversation = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1,
                                      label="Conversation #")
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1,
                                widget=forms.HiddenInput)

    def clean(self) -> dict:
        data = super().clean()
        period_check(data.get("since"), data.get("until"))
        return data


@require_GET
@requires(ACCESS_LOG)
def access_log(request: HttpRequest) -> HttpResponse:
    form = AccessLogForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    filters = AccessFilters(user=data.get("user") or "", kind=data.get("kind") or "",
                            since=data.get("since"), until=data.get("until"),
                            conversation=data.get("conversation"))
    rows = []
    if valid:  # a bad filter lists nothing rather than everything
        qs = access_entries(filters=filters)
        if data.get("before"):
            qs = qs.filter(pk__lt=data["before"])  # ids grow with time: the next page
        rows = list(qs.order_by("-id")[:PAGE + 1])
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    kept = {k: v for k, v in request.GET.items() if v and k != "before"}
    return render(request, "audit/access_log.html", {
        "form": form, "entries": [(e, access_sentence(e)) for e in rows],
        "next_url": f"?{urlencode({**kept, 'before': rows[-1].pk})}" if more else "",
        "filtered": bool(kept), **_viewer(request),
    }, status=200 if valid else 400)
