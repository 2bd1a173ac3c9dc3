"""Destination URLs are checked against SSRF when saved and again at send time: https only
(unless ALERTS_ALLOW_HTTP), no credentials in the URL, and every address the host resolves
to must be public (unless ALERTS_ALLOW_PRIVATE_ADDRESSES): no loopback, private, link-local
(cloud metadata), multicast, reserved or unspecified address. Senders never follow
redirects and always time out."""

import ipaddress
import socket
from urllib.parse import urlsplit

from .conf import alerts_setting


class UnsafeDestination(ValueError):
    """The URL may not be called; the message says why, in words."""


def _address_refused(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for test, words in ((ip.is_unspecified, "an unspecified"), (ip.is_loopback, "a loopback"),
                        (ip.is_link_local, "a link-local"),
                        (ip.is_private, "a private"), (ip.is_multicast, "a multicast"),
                        (ip.is_reserved, "a reserved")):
        if test:
            return words
    return None


def url_check(url: str, *, resolve: bool = True) -> None:
    """Raise UnsafeDestination unless the URL may be called now."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination(f"The URL is not valid: {exc}.") from exc
    allowed = {"https"} | ({"http"} if alerts_setting("ALERTS_ALLOW_HTTP") else set())
    if parts.scheme not in allowed:
        raise UnsafeDestination(
            "Only https:// URLs are allowed." if parts.scheme == "http"
            else f"The URL must start with {' or '.join(sorted(s + '://' for s in allowed))}.")
    if not parts.hostname:
        raise UnsafeDestination("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeDestination("The URL may not carry a user name or password.")
    if alerts_setting("ALERTS_ALLOW_PRIVATE_ADDRESSES") or not resolve:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https"
                                                            else 80), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeDestination(f"The host {parts.hostname} cannot be resolved.") from exc
    for info in infos:
        address = str(info[4][0])
        refused = _address_refused(address)
        if refused:
            raise UnsafeDestination(
                f"The host {parts.hostname} resolves to {address}, {refused} address; "
                "alerts are only sent to public addresses.")
