from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness probe for load balancers: answers 200 without touching the database.

    Also the floor `make bench-ingest` compares the webhook path against.
    """
    return HttpResponse("ok", content_type="text/plain")
