"""Every page a person can open, with ids taken from the seeded demo: the list the phone-width
and "no dict or list repr" tests walk (bin/screenshots shoots the same pages)."""

from alerts.models import Alert, Destination, Rule
from audit.qa_models import ReviewQueue
from conversations.models import Conversation, Customer, Flag
from handoffs.machine import State


def _first(qs) -> int | None:
    obj = qs.order_by("pk").first()
    return obj.pk if obj else None


def every_page() -> list[str]:
    """The paths of every page of the app (each replay kind the demo has, several of each),
    skipping only pages whose object the database lacks."""
    paths = [
        "/", "/?period=yesterday", "/?period=7d", "/today/",
        "/inbox/", "/inbox/?problem=handoff", "/inbox/?sort=severity",
        "/dashboards/", "/dashboards/?days=7", "/dashboards/?days=90",
        "/dashboards/?channel=whatsapp",
        "/reports/", "/reports/per/agent/", "/reports/per/model/", "/reports/per/prompt/",
        "/reports/per/queue/", "/reports/per/team/", "/reports/compare/", "/reports/qa/",
        "/alerts/", "/alerts/?state=all", "/alerts/rules/", "/alerts/rules/new/",
        "/alerts/destinations/",
        "/customers/", "/access-log/",
        "/qa/", "/qa/queues/new/", "/qa/agreement/",
        "/api/redoc/", "/api/docs/",
        "/admin/", "/admin/conversations/flag/", "/admin/conversations/conversation/",
        "/admin/conversations/rawevent/", "/admin/handoffs/handoff/",
    ]
    replays = set()
    for kind in Flag.Kind.values:
        replays.add(_first(Conversation.objects.filter(flags__kind=kind)))
    for state in State:
        replays.add(_first(Conversation.objects.filter(handoffs__state=state.value)))
    for channel in ("whatsapp", "sms", "email", "web"):
        replays.add(_first(Conversation.objects.filter(channel=channel)))
    replays.add(_first(Conversation.objects.filter(flags__isnull=True)))
    replays.discard(None)
    for pk in sorted(replays):
        paths += [f"/conversations/{pk}/", f"/conversations/{pk}/raw/"]
    for path, pk in (("/alerts/{}/", _first(Alert.objects)),
                     ("/alerts/rules/{}/edit/", _first(Rule.objects)),
                     ("/alerts/destinations/{}/edit/", _first(Destination.objects)),
                     ("/customers/{}/", _first(Customer.objects.filter(
                         conversations__isnull=False))),
                     ("/qa/queues/{}/edit/", _first(ReviewQueue.objects))):
        if pk is not None:
            paths.append(path.format(pk))
    return paths
