"""The Today page: the home page of a support manager."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .roles import VIEW
from .today import PERIODS, today_period, today_read
from .views import _viewer, requires


@require_GET
@requires(VIEW)
def today(request: HttpRequest) -> HttpResponse:
    period = today_period(request.GET.get("period", "today"))
    data = today_read(period=period, reader=request.user)
    top = max([g.count for g in data.groups] or [0])
    return render(request, "audit/today.html", {
        "today": data, "period": period, "top": top,
        "periods": [(key, label) for key, (label, _, _) in PERIODS.items()],
        **_viewer(request),
    })
