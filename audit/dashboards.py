"""The dashboards page and the CSV export: thin views over audit.dashboard_selectors,
audit.dashboard_charts and audit.export."""

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from conversations.models import Channel

from .access_log import Kind, access_record
from .dashboard_charts import dashboard_view
from .dashboard_selectors import PERIODS, dashboard, dashboard_period
from .export import export_csv_lines
from .quality_figures import quality_figures, quality_tables
from .roles import EXPORT, PII, VIEW, can
from .views import InboxFilterForm, _viewer, requires


class DashboardForm(forms.Form):
    days = forms.TypedChoiceField(required=False, coerce=int, empty_value=30,
                                  choices=[(str(d), f"Last {d} days") for d in PERIODS],
                                  label="Period")
    channel = forms.ChoiceField(required=False, choices=[("", "All channels"), *Channel.choices])
    brand = forms.CharField(required=False, max_length=64)  # a BrandVoice name, for tone


@require_GET
@requires(VIEW)
def dashboards(request: HttpRequest) -> HttpResponse:
    form = DashboardForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    period = dashboard_period(days=data.get("days") or 30, channel=data.get("channel") or "")
    board = dashboard(period=period, brand=data.get("brand") or "")
    brand = {"brand": board.tone.brand} if board.tone and len(board.tone.brands) > 1 else {}
    kept = {"channel": period.channel} if period.channel else {}
    view = dashboard_view(board)
    view.tables[-1:-1] = quality_tables(quality_figures(period=period))  # before day by day
    return render(request, "audit/dashboards.html", {
        "form": form, "board": board, "view": view,
        "period_urls": [(d, f"?{urlencode({**kept, **brand, 'days': d})}") for d in PERIODS],
        "channel_urls": [("", "All", f"?{urlencode({'days': period.days, **brand})}")] + [
            (value, label, f"?{urlencode({'days': period.days, 'channel': value, **brand})}")
            for value, label in Channel.choices],
        "brand_urls": [(name, label, f"?{urlencode({**kept, 'days': period.days, 'brand': name})}")
                       for name, label in board.tone.brands] if brand else [],
        **_viewer(request),
    }, status=200 if valid else 400)


@require_GET
@requires(EXPORT)
def export_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The inbox's conversations (same filters) as CSV, streamed."""
    form = InboxFilterForm(request.GET)
    if not form.is_valid():  # one bad filter must not drop the others: export nothing
        return JsonResponse({"detail": "invalid filters", "errors": form.errors}, status=400)
    # reverse() once, not per row: the replay URL of conversation 0, with 0 cut off.
    prefix = request.build_absolute_uri(reverse("audit:replay", args=[0]))[: -len("0/")]
    lines = export_csv_lines(filters=form.filters(), can_pii=can(request.user, PII),
                             replay_url=lambda pk: f"{prefix}{pk}/", reader=request.user)
    if can(request.user, PII):
        kept = {k: v for k, v in request.GET.items() if v}
        access_record(request=request, kind=Kind.EXPORT, what="the conversations CSV",
                      objects_label=f"filters: {urlencode(kept)}" if kept else "no filters")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="conversations-{stamp}.csv"'
    return response
