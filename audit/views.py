"""The pages: thin views over audit.selectors (inbox) and audit.replay_selectors; every one
checks the viewer's permission."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from conversations.flag_text import flag_kind_label
from conversations.models import Channel, Conversation, Flag, RawEvent
from conversations.selectors import status_events_waiting
from handoffs.machine import State
from scoring.qa_counted import QA_FILTERS

from .access_log import Kind, access_record, pii_viewed
from .inbox_filters import InboxFilters
from .keyset import SORTS, BadCursor
from .labels import state_label
from .masking import response_mask
from .outcome_rules import OUTCOME_FILTERS
from .problems import problem_choices
from .replay_selectors import conversation_replay
from .roles import EXPORT, FLAGS, PII, RAW, VIEW, can, role_of
from .selectors import InboxPage, inbox_page
from .triage import TriageError, flag_owners, flag_trails, triage_apply

View = Callable[..., HttpResponse]


def requires(codename: str) -> Callable[[View], View]:
    """Signed in (else the sign-in page) and holding the permission (else 403). What the
    page answers passes the masking gate (audit.masking) unless the viewer may see PII."""

    def decorate(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not can(request.user, codename):
                return render(request, "audit/forbidden.html",
                              {"needed": codename}, status=403)
            response = view(request, *args, **kwargs)
            return response if can(request.user, PII) else response_mask(response)

        return wrapped

    return decorate


def _viewer(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    role = role_of(user)
    return {"can_pii": can(user, PII), "can_flags": can(user, FLAGS),
            "can_raw": can(user, RAW), "can_export": can(user, EXPORT),
            "role": role, "role_label": role.replace("_", " ")}


def _choices(values: list[str], blank: str = "any") -> list[tuple[str, str]]:
    return [("", blank), *[(v, v.replace("_", " ")) for v in values]]


FLAG_KINDS = list(Flag.Kind.values)
DATE_FILTERS = ("since", "until", "flagged_since", "flagged_until", "alert")


class InboxFilterForm(forms.Form):
    """The inbox filters, all in the query string so a view can be bookmarked and shared."""

    problem = forms.ChoiceField(required=False, choices=problem_choices,
                                label="What went wrong")
    channel = forms.ChoiceField(required=False, choices=[("", "any"), *Channel.choices])
    flag_kind = forms.ChoiceField(required=False, label="Flag",
                                  choices=[("", "any"), *[(k, flag_kind_label(k))
                                                          for k in FLAG_KINDS]])
    flag_status = forms.ChoiceField(required=False,
                                    choices=[("", "any"), *Flag.Status.choices])
    handoff_state = forms.ChoiceField(
        required=False, label="Handoff",
        choices=[("", "any"), *[(s.value, state_label(s.value)) for s in State],
                 ("any", "any handoff"), ("none", "no handoff")])
    agent = forms.CharField(required=False, max_length=255)
    model = forms.CharField(required=False, max_length=255, label="AI model")
    prompt_version = forms.CharField(required=False, max_length=100)
    brand = forms.CharField(required=False, max_length=64)
    since = forms.DateField(required=False, label="Active since",
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="Active until",
                            widget=forms.DateInput(attrs={"type": "date"}))
    flagged_since = forms.DateField(required=False, label="Problem since",
                                    widget=forms.DateInput(attrs={"type": "date"}))
    flagged_until = forms.DateField(required=False, label="Problem until",
                                    widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=200, label="Search")
    resolved = forms.ChoiceField(required=False, choices=[("", "any"), ("yes", "resolved"),
                                                          ("no", "not resolved")])
    alert = forms.IntegerField(required=False, min_value=1, label="Alert #")
    assigned = forms.ChoiceField(required=False, label="Flags owned by",
                                 choices=[("", "anyone"), ("me", "me")])
    queue = forms.CharField(required=False, max_length=100)
    team = forms.CharField(required=False, max_length=100)
    outcome = forms.ChoiceField(required=False, choices=[("", "any"),
                                                         *OUTCOME_FILTERS.items()])
    qa = forms.ChoiceField(required=False, label="QA review",
                           choices=[("", "any"), *QA_FILTERS.items()])
    scorecard = forms.SlugField(required=False, max_length=64)
    qa_category = forms.SlugField(required=False, max_length=48, label="QA category")
    dates = forms.ChoiceField(required=False, label="Dates are",
                              choices=[("", "last activity"), ("started", "start")])
    sort = forms.ChoiceField(required=False, choices=[(s, s) for s in SORTS])

    def filters(self) -> InboxFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return InboxFilters(**{
            name: data.get(name) or (None if name in DATE_FILTERS else "")
            for name in InboxFilters.__dataclass_fields__
        })


@require_GET
@requires(VIEW)
def inbox(request: HttpRequest) -> HttpResponse:
    form = InboxFilterForm(request.GET)
    filters = form.filters()
    sort = (form.cleaned_data.get("sort") if form.is_valid() else "") or "recent"
    error = ""
    masked = not can(request.user, PII)
    try:
        if not form.is_valid():
            # A bad filter is a 400 that lists nothing: dropping it would widen the list.
            page = InboxPage(rows=[], next_cursor="", sort=sort)
        else:
            page = inbox_page(filters=filters, sort=sort, cursor=request.GET.get("after", ""),
                              masked=masked, reader=request.user)
    except BadCursor as exc:
        error = str(exc)
        page = inbox_page(filters=filters, sort=sort, masked=masked, reader=request.user)
    kept = {k: v for k, v in request.GET.items() if k not in ("after",) and v}
    status = 200 if not error and form.is_valid() else 400
    return render(request, "audit/inbox.html", {
        "form": form, "page": page, "error": error,
        "next_url": f"?{urlencode({**kept, 'after': page.next_cursor})}"
        if page.next_cursor else "",
        "first_url": f"?{urlencode(kept)}" if "after" in request.GET else "",
        "sort_urls": {s: f"?{urlencode({**kept, 'sort': s})}" for s in SORTS},
        "filtered": any(v for k, v in kept.items() if k != "sort"),
        "waiting_statuses": status_events_waiting().count(),
        **_viewer(request),
    }, status=status)


@require_GET
@requires(VIEW)
def replay(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = get_object_or_404(Conversation, pk=conversation_id)
    return render(request, "audit/replay.html", replay_context(request, conversation))


def replay_context(request: HttpRequest, conversation: Conversation,
                   qa_form: dict[str, Any] | None = None,
                   qa_errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The replay page's context, with the QA review panel (audit.qa_views). Every render
    of a replay builds it, so an unmasked one joins the access log here."""
    from .qa_views import review_panel  # qa_views imports this module

    pii_viewed(request=request, what="replay", conversation_ids=[conversation.pk])
    data = conversation_replay(conversation=conversation)
    flags = [i.obj for i in data.items if i.kind == "flag"]
    return {
        "replay": data, "conversation": conversation,
        "flag_statuses": [s for s in Flag.Status.choices if s[0] != Flag.Status.OPEN],
        "flag_trails": flag_trails(user=request.user, flags=flags),
        "flag_owners": list(flag_owners().values_list("username", flat=True))
        if can(request.user, FLAGS) else [],
        "back": _safe_back(request, reverse("audit:inbox")),
        **review_panel(request, conversation, flags, form=qa_form, errors=qa_errors),
        **_viewer(request),
    }


def _safe_back(request: HttpRequest, default: str) -> str:
    target = request.GET.get("back") or request.POST.get("back") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


class FlagStatusForm(forms.Form):
    """Triage a flag: status (blank keeps it), a note, owner, due date, ticket link. Fields
    left out of the POST are left unchanged; the page posts them all."""

    status = forms.ChoiceField(required=False, choices=[("", "keep"), *Flag.Status.choices])
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)
    owner = forms.CharField(required=False, max_length=150)
    due_on = forms.DateField(required=False)
    ticket_url = forms.URLField(required=False, max_length=500, assume_scheme="https")


@require_POST
@requires(FLAGS)
def flag_status(request: HttpRequest, flag_id: int) -> HttpResponse:
    """Acknowledge, resolve, dismiss (false positive) or reopen a flag, assign it, set a
    due date or ticket, add a note: each change joins the flag's trail (who, when, what)."""
    flag = get_object_or_404(Flag, pk=flag_id)
    form = FlagStatusForm(request.POST)
    error = ""
    if form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k in request.POST}
        try:
            triage_apply(flag=flag, by=request.user, data=data)
        except TriageError as exc:
            error = str(exc)
    else:
        error = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
    if error:
        return render(request, "audit/forbidden.html", {
            "message": "That flag action was not understood: " + error}, status=400)
    back = reverse("audit:replay", args=[flag.conversation_id])
    return HttpResponseRedirect(f"{back}#flag-{flag.pk}")


@require_GET
@requires(RAW)
def raw_events(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """The raw events the conversation was built from, as the providers sent them."""
    conversation = get_object_or_404(Conversation, pk=conversation_id)
    ids = set(conversation.messages.values_list("raw_event_id", flat=True))
    ids |= set(conversation.events.values_list("raw_event_id", flat=True))
    ids |= set(conversation.ai_steps.values_list("raw_event_id", flat=True))
    ids |= set(conversation.outcomes.values_list("raw_event_id", flat=True))
    events = RawEvent.objects.filter(pk__in=[i for i in ids if i]).order_by("received_at", "id")
    response = render(request, "audit/raw_events.html", {
        "conversation": conversation, "events": events, **_viewer(request),
    })
    access_record(request=request, kind=Kind.RAW_EVENTS, what="raw events page",
                  conversation_ids=[conversation.pk])
    return response
