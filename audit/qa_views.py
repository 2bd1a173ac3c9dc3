"""The QA pages (issue 7): queues with progress and "take next", the review panel of the
replay page (save draft, submit), the queue editor and the agreement page for leads and
reviewers, and the CSV of reviews. Thin: the logic is in audit.qa_queues (writes),
audit.qa_selectors (reads, blind rule) and scoring.qa / scoring.qa_selectors."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversations.flag_text import flag_kind_label
from conversations.models import Channel, Conversation, Flag
from scoring.models import Review, Scorecard, ScorecardVersion
from scoring.qa import QAError, review_draft_save, scorecard_default_ensure
from scoring.qa_selectors import (
    qa_agreement,
    qa_auto_human_correlation,
    qa_flag_precision,
    qa_trends,
    review_get,
)

from .access_log import Kind, access_record
from .api import filters
from .api.filters import DayField, period_check
from .inbox_filters import day_start
from .qa_charts import agreement_view
from .qa_export import reviews_csv_lines
from .qa_models import QueueSlot, ReviewQueue
from .qa_queues import QueueError, queue_fill, queue_may_take, queue_review_submit, slot_take_next
from .qa_selectors import (
    flags_blind_mask,
    is_blind,
    is_lead,
    queues_progress,
    queues_visible,
    review_version_for,
    reviewers_progress_visible,
    reviews_visible,
    slots_of,
)
from .roles import ANNOTATE, EXPORT, LEAD, PII, ROLES, can
from .views import FLAG_KINDS, _viewer, requires


def _qa_viewer(request: HttpRequest) -> dict[str, Any]:
    return {**_viewer(request), "can_annotate": can(request.user, ANNOTATE),
            "is_lead": is_lead(request.user)}


# --- queues ------------------------------------------------------------------------------


@require_GET
@requires(ANNOTATE)
def queues(request: HttpRequest) -> HttpResponse:
    user = request.user
    visible = list(queues_visible(user=user).order_by("name", "pk"))
    progress = queues_progress(queues=visible)
    rows = []
    for q in visible:
        listed = [u.get_username() for u in q.reviewers.all()]
        mine = not listed or user.get_username() in listed
        rows.append({"queue": q, "progress": progress[q.pk], "reviewers": listed,
                     "may_take": mine and q.active, "rules": _rules(q), "filters": _filters(q)})
    return render(request, "audit/qa_queues.html", {
        "rows": rows, "empty": request.GET.get("empty", ""),
        "reviewers": reviewers_progress_visible(user=user, queues=visible),
        "my_open": _my_open_slots(user),
        **_qa_viewer(request),
    })


def _rules(q: ReviewQueue) -> list[str]:
    rules = [f"{pct}% of {channel}" for channel, pct in (q.channel_percent or {}).items() if pct]
    if q.flag_kinds:
        rules.append(f"every {' or '.join(q.flag_kinds)} flag")
    if q.dropped_handoffs:
        rules.append("every dropped handoff")
    return rules


def _filters(q: ReviewQueue) -> list[str]:
    named = [("brand", q.brand), ("model", q.ai_model), ("prompt", q.prompt_version),
             ("from", q.since), ("to", q.until)]
    return [f"{label} {value}" for label, value in named if value]


def _my_open_slots(user: Any) -> list[QueueSlot]:
    return list(QueueSlot.objects.filter(reviewer=user, done_at__isnull=True)
                .select_related("queue", "item__conversation").order_by("claimed_at")[:20])


def _next_url(queue: ReviewQueue, slot: Any) -> str:
    return (f"{reverse('audit:replay', args=[slot.item.conversation_id])}"
            f"?{urlencode({'queue': queue.pk})}#review")


@require_POST
@requires(ANNOTATE)
def take_next(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = get_object_or_404(ReviewQueue, pk=queue_id)
    try:
        slot = slot_take_next(queue=queue, reviewer=request.user)
    except QueueError as exc:
        return render(request, "audit/forbidden.html", {"message": str(exc)}, status=403)
    if slot is None:
        return _queue_empty(queue)
    return HttpResponseRedirect(_next_url(queue, slot))


def _queue_empty(queue: ReviewQueue) -> HttpResponse:
    return HttpResponseRedirect(
        f"{reverse('audit:qa_queues')}?{urlencode({'empty': queue.name})}")


@require_POST
@requires(LEAD)
def fill_now(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = get_object_or_404(ReviewQueue, pk=queue_id)
    added = queue_fill(queue=queue)
    return HttpResponseRedirect(
        f"{reverse('audit:qa_queues')}?{urlencode({'filled': queue.name, 'added': added})}")


# What each point of a 1-5 category means, shown under its buttons.
ONE_FIVE_MEANINGS = [("1", "poor"), ("2", "weak"), ("3", "acceptable"), ("4", "good"),
                     ("5", "excellent")]


class QueueForm(forms.ModelForm):
    """The queue editor: one percent field per channel, flag kinds as checkboxes."""

    flag_kinds = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(k, flag_kind_label(k)) for k in FLAG_KINDS],
        help_text="Every conversation with a flag of one of these kinds.")
    reviewers = forms.ModelMultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, queryset=None,
        help_text="Who may take items; none ticked: every QA reviewer and manager.")

    class Meta:
        model = ReviewQueue
        fields = ["name", "description", "scorecard", "active", "flag_kinds", "dropped_handoffs",
                  "brand", "ai_model", "prompt_version", "since", "until", "double_percent",
                  "reviewers"]
        field_classes = {"since": DayField, "until": DayField}  # 1900..9998
        labels = {"ai_model": "AI model", "double_percent": "Double review %",
                  "since": "Started from", "until": "Started until"}
        widgets = {"since": forms.DateInput(attrs={"type": "date"}),
                   "until": forms.DateInput(attrs={"type": "date"}),
                   "description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        User = get_user_model()
        annotators = [r for r, perms in ROLES.items() if ANNOTATE in perms]
        self.fields["reviewers"].queryset = User.objects.filter(
            Q(groups__name__in=annotators) | Q(is_superuser=True), is_active=True
        ).distinct().order_by("username")
        self.fields["scorecard"].initial = Scorecard.objects.order_by("pk").first()
        percents = (self.instance.channel_percent or {}) if self.instance.pk else {}
        for value, label in Channel.choices:
            self.fields[f"percent_{value}"] = forms.IntegerField(
                required=False, min_value=0, max_value=100, label=f"{label} %",
                initial=percents.get(value, 0))
        self.channel_fields = [self[f"percent_{v}"] for v, _ in Channel.choices]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        period_check(data.get("since"), data.get("until"))
        return data

    def save(self, commit: bool = True) -> ReviewQueue:
        queue = super().save(commit=False)
        queue.channel_percent = {v: self.cleaned_data[f"percent_{v}"]
                                 for v, _ in Channel.choices
                                 if self.cleaned_data.get(f"percent_{v}")}
        queue.flag_kinds = list(self.cleaned_data.get("flag_kinds") or [])
        if commit:
            queue.save()
            self.save_m2m()
        return queue


@require_http_methods(["GET", "POST"])
@requires(LEAD)
def queue_edit(request: HttpRequest, queue_id: int | None = None) -> HttpResponse:
    queue = get_object_or_404(ReviewQueue, pk=queue_id) if queue_id else None
    if queue is None and not Scorecard.objects.exists():
        scorecard_default_ensure()
    form = QueueForm(request.POST or None, instance=queue)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        if not saved.pk:
            saved.created_by = request.user.get_username()
        saved.save()
        form.save_m2m()
        return HttpResponseRedirect(
            f"{reverse('audit:qa_queues')}?{urlencode({'saved': saved.name})}")
    return render(request, "audit/qa_queue_form.html", {
        "form": form, "queue": queue, **_qa_viewer(request),
    }, status=400 if request.method == "POST" else 200)


# --- the review panel of the replay page -------------------------------------------------


def _id(raw: str | None) -> int | None:
    """A positive database id from a query string or form value, else None ("²" and
    "٣" are digits to str.isdigit but not to int(); 19 digits overflow a bigint)."""
    raw = (raw or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) < 19 else None


def _queue_param(request: HttpRequest) -> ReviewQueue | None:
    pk = _id(request.GET.get("queue") or request.POST.get("queue"))
    return ReviewQueue.objects.filter(pk=pk).first() if pk else None


def _form_from_review(review: Review | None) -> dict[str, Any]:
    if review is None:
        return {"answers": {}, "comments": {}, "notes": {}, "verdicts": {}, "comment": ""}
    return {
        "answers": {a.category.key: "na" if a.na else str(a.value) for a in review.answers.all()},
        "comments": {a.category.key: a.comment for a in review.answers.all()},
        "notes": {n.message_id: {"label": n.label, "comment": n.comment}
                  for n in review.message_notes.all()},
        "verdicts": {v.flag_id: v.verdict for v in review.flag_verdicts.all()},
        "comment": review.comment,
    }


def _form_from_post(post: Any, message_ids: list[int]) -> dict[str, Any]:
    answers = {k[len("answer-"):]: v for k, v in post.items() if k.startswith("answer-") and v}
    comments = {k[len("comment-"):]: v for k, v in post.items() if k.startswith("comment-")}
    notes = {}
    for mid in message_ids:
        label, comment = post.get(f"note-label-{mid}", ""), post.get(f"note-comment-{mid}", "")
        if label.strip() or comment.strip():
            notes[mid] = {"label": label.strip()[:64], "comment": comment}
    verdicts = {_id(k[len("verdict-"):]): v for k, v in post.items()
                if k.startswith("verdict-") and _id(k[len("verdict-"):]) and v}
    return {"answers": answers, "comments": comments, "notes": notes, "verdicts": verdicts,
            "comment": post.get("comment", "")}


def _service_input(form: dict[str, Any]) -> dict[str, Any]:
    answers = {}
    for key, value in form["answers"].items():
        na = value == "na"
        answers[key] = {"value": None if na else value, "na": na,
                        "comment": form["comments"].get(key, "")}
    return {
        "answers": answers,
        "notes": [{"message_id": mid, **n} for mid, n in form["notes"].items()],
        "verdicts": [{"flag_id": fid, "verdict": v} for fid, v in form["verdicts"].items()],
        "comment": form["comment"],
    }


def _errors_by_field(exc: QAError, form: dict[str, Any]) -> dict[str, list[str]]:
    """QAError.message_dict keys onto the form's field names."""
    note_ids = list(form["notes"])
    out: dict[str, list[str]] = {}
    for key, messages in exc.message_dict.items():
        if key.startswith("answers."):
            name = f"answer-{key[len('answers.'):]}"
        elif key.startswith("flags."):
            name = f"verdict-{key[len('flags.'):]}"
        elif key.startswith("notes["):
            index = int(key[len("notes["):key.index("]")])
            name = f"note-{note_ids[index]}" if index < len(note_ids) else "review"
        elif key in ("answers", "flags"):
            name = key
        else:
            name = "review"
        out.setdefault(name, []).extend(messages)
    return out


def review_panel(request: HttpRequest, conversation: Conversation, flags: list[Flag],
                 form: dict[str, Any] | None = None,
                 errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The replay page's QA context: the review form for annotators, others' reviews when
    the blind rule allows, flags masked for a blind reviewer."""
    user = request.user
    flags_blind_mask(user=user, flags=flags)
    blind = is_blind(user=user, conversation=conversation)
    others = list(reviews_visible(user=user, qs=Review.objects.filter(
        conversation=conversation, status=Review.Status.SUBMITTED).exclude(reviewer=user))
        .select_related("reviewer", "version__scorecard").prefetch_related(
            "answers__category", "flag_verdicts", "message_notes")
        .order_by("submitted_at", "pk"))
    context: dict[str, Any] = {"qa_blind": blind, "qa_others": others}
    if not can(user, ANNOTATE):
        return context
    queue = _queue_param(request)
    version = review_version_for(user=user, conversation=conversation, queue=queue)
    review = review_get(reviewer=user, conversation=conversation, version=version)
    form = form or _form_from_review(review)
    categories = list(version.categories.all())
    verdict_flags = [f for f in flags if f.status in Flag.ACTIVE_STATUSES
                     or f.pk in form["verdicts"]]
    context.update({
        "qa": {
            "version": version, "review": review, "queue": queue, "form": form,
            "errors": errors or {},
            "note_errors": {int(k[len("note-"):]): v for k, v in (errors or {}).items()
                            if k.startswith("note-")},
            "categories": [{
                "c": c, "value": form["answers"].get(c.key, ""),
                "comment": form["comments"].get(c.key, ""),
                "choices": [("1", "Yes"), ("0", "No")] if c.scale == "yes_no"
                else [(str(i), str(i)) for i in range(1, 6)],
                "meanings": [] if c.scale == "yes_no" else ONE_FIVE_MEANINGS,
                "errors": (errors or {}).get(f"answer-{c.key}", []),
            } for c in categories],
            "flags": [{"f": f, "verdict": form["verdicts"].get(f.pk, ""),
                       "errors": (errors or {}).get(f"verdict-{f.pk}", [])}
                      for f in verdict_flags],
            "slots": slots_of(user=user, conversation=conversation),
        },
    })
    return context


@require_POST
@requires(ANNOTATE)
def review_save(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """Save a draft or submit the scorecard; errors re-render the replay next to fields."""
    from .views import replay_context

    conversation = get_object_or_404(Conversation, pk=conversation_id)
    version_id = _id(request.POST.get("version"))
    version = ScorecardVersion.objects.filter(pk=version_id).first() if version_id else None
    if version is None:
        return HttpResponseBadRequest(
            f"version: {request.POST.get('version', '')!r} is not a scorecard version id.",
            content_type="text/plain; charset=utf-8")
    message_ids = list(conversation.messages.values_list("pk", flat=True))
    form = _form_from_post(request.POST, message_ids)
    submit = request.POST.get("action") != "draft"
    queue = _queue_param(request)
    try:
        if submit:
            queue_review_submit(reviewer=request.user, conversation=conversation,
                                version=version, **_service_input(form))
        else:
            review_draft_save(reviewer=request.user, conversation=conversation,
                              version=version, **_service_input(form))
    except QAError as exc:
        context = replay_context(request, conversation, qa_form=form,
                                 qa_errors=_errors_by_field(exc, form))
        return render(request, "audit/replay.html", context, status=400)
    replay = reverse("audit:replay", args=[conversation.pk])
    if not submit:
        query = f"?{urlencode({'queue': queue.pk, 'saved': 1})}" if queue else "?saved=1"
        return HttpResponseRedirect(f"{replay}{query}#review")
    if queue is not None and queue.active and queue_may_take(queue=queue, reviewer=request.user):
        slot = slot_take_next(queue=queue, reviewer=request.user)
        if slot is not None:
            return HttpResponseRedirect(_next_url(queue, slot))
        return _queue_empty(queue)
    return HttpResponseRedirect(f"{replay}?submitted=1#review")


# --- agreement and calibration -------------------------------------------------------------


class PeriodForm(filters.PeriodForm):
    # DayField: 1900..9998, so the day after `until` always exists.
    since = DayField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = DayField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                     help_text="inclusive")


def _bounds(day_from: date | None, day_to: date | None) -> tuple[datetime | None, datetime | None]:
    start = day_start(day_from) if day_from else None
    end = day_start(day_to + timedelta(days=1)) if day_to else None
    return start, end


@require_GET
@requires(ANNOTATE)
def agreement(request: HttpRequest) -> HttpResponse:
    form = PeriodForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    start, end = _bounds(data.get("since"), data.get("until"))
    view = agreement_view(
        agreement=qa_agreement(start=start, end=end),
        correlation=qa_auto_human_correlation(start=start, end=end),
        precision=qa_flag_precision(start=start, end=end),
        trends=qa_trends(start=start, end=end), start=start, end=end,
        since=data.get("since"), until=data.get("until"), user=request.user)
    return render(request, "audit/qa_agreement.html", {
        "form": form, "view": view, **_qa_viewer(request),
    }, status=200 if valid else 400)


# --- CSV ----------------------------------------------------------------------------------


@require_GET
@requires(EXPORT)
def reviews_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """Submitted reviews the user may see, one row per review and category, streamed."""
    form = PeriodForm(request.GET)
    if not form.is_valid():
        reasons = "; ".join(f"{field}: {' '.join(errors)}"
                            for field, errors in form.errors.items())
        return HttpResponseBadRequest(reasons, content_type="text/plain; charset=utf-8")
    start, end = _bounds(form.cleaned_data.get("since"), form.cleaned_data.get("until"))
    lines = reviews_csv_lines(user=request.user, start=start, end=end,
                              can_pii=can(request.user, PII))
    if can(request.user, PII):
        access_record(request=request, kind=Kind.EXPORT, what="the QA reviews CSV",
                      objects_label=" to ".join(
                          f"{k} {v}" for k, v in (("from", form.cleaned_data.get("since")),
                                                  ("until", form.cleaned_data.get("until")))
                          if v) or "every day")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="qa-reviews-{stamp}.csv"'
    return response
