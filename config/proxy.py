"""The client's address as the host's proxies tell it, for sign-in throttling (django-axes).

Behind TRUSTED_PROXY_COUNT proxies that each append the address they saw to
X-Forwarded-For, the client is the entry that many places from the right: whatever the
client wrote into the header itself sits further left and is never read. With no proxy
(the default unless DJANGO_BEHIND_TLS_PROXY), the header is ignored and REMOTE_ADDR counts,
so nobody can pick a fresh address per try by sending the header.
"""

from ipaddress import ip_address

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or ""
    count = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if count <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [h for h in hops if h]
    if len(hops) < count:  # did not come through every proxy: only the socket is known
        return remote
    candidate = hops[-count]
    try:
        return str(ip_address(candidate))
    except ValueError:
        return remote
