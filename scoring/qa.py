"""Writes of QA annotation (issue 7): scorecards and their immutable versions, reviews
(draft, submit), the `human` Score rows a submitted review writes, and flag verdicts.

Keyword-only functions named <entity>_<action>. Who may call them (audit.annotate) is the
caller's check: scoring does not import audit. The picture is in docs/qa.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from conversations.models import AuthorKind, Conversation, Flag, Message
from conversations.services import dashboard_days_mark, flag_set_status

from .models import (
    Review,
    ReviewAnswer,
    ReviewFlagVerdict,
    ReviewMessageNote,
    Score,
    Scorecard,
    ScorecardCategory,
    ScorecardVersion,
)
from .services import conversation_brands_resolve

Scale = ScorecardCategory.Scale

# Score names of human answers: qa:<category key>; qa:overall is the weighted result / 100.
SCORE_PREFIX = "qa:"
OVERALL = "overall"
DEFAULT_SCORECARD_KEY = "default"

# The default scorecard. "handoff_needed" is a fact, not a quality, so it weighs 0: it is
# recorded (and compared between reviewers) without moving the result.
DEFAULT_CATEGORIES: tuple[dict[str, Any], ...] = (
    {"key": "greeting", "label": "Greeting", "scale": Scale.YES_NO, "weight": 1.0},
    {"key": "empathy", "label": "Empathy", "scale": Scale.ONE_FIVE, "weight": 2.0},
    {"key": "brand_tone", "label": "Brand tone", "scale": Scale.ONE_FIVE, "weight": 2.0},
    {"key": "solution_offered", "label": "Solution offered", "scale": Scale.YES_NO,
     "weight": 2.0, "na_allowed": True},
    {"key": "handoff_needed", "label": "Handoff needed?", "scale": Scale.YES_NO,
     "weight": 0.0},
    {"key": "handoff_on_time", "label": "Handoff on time?", "scale": Scale.YES_NO,
     "weight": 1.0, "na_allowed": True},
    {"key": "accuracy", "label": "Accuracy / no hallucination", "scale": Scale.YES_NO,
     "weight": 3.0, "critical": True},
    {"key": "closing", "label": "Closing", "scale": Scale.YES_NO, "weight": 1.0,
     "na_allowed": True},
)

_CATEGORY_FIELDS = {"key", "label", "help_text", "scale", "na_allowed", "weight", "critical"}
_YES = {True, "1",  # True == 1
        "yes", "y", "true"}
_NO = {False, "0",  # False == 0
       "no", "n", "false"}


class QAError(ValidationError):
    """Invalid scorecard or review input. `message_dict` maps each offending field
    (`categories[2].scale`, `answers.empathy`, `flags.17`, ...) to its messages."""


@dataclass(frozen=True)
class Answer:
    """One category's answer as a caller gives it: a value on the category's scale (yes/no:
    True/False, 1/0, "yes"/"no"; 1-5: 1..5) or na=True."""

    value: Any = None
    na: bool = False
    comment: str = ""


@dataclass(frozen=True)
class MessageNote:
    message_id: int
    label: str = ""
    comment: str = ""


@dataclass(frozen=True)
class FlagVerdict:
    flag_id: int
    verdict: str  # ReviewFlagVerdict.Verdict
    comment: str = ""


# --- scorecards --------------------------------------------------------------------------


def _categories_clean(categories: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    errors: dict[str, list[str]] = {}
    clean: list[dict[str, Any]] = []
    seen: set[str] = set()
    if not categories:
        raise QAError({"categories": ["A scorecard needs at least one category."]})
    for i, raw in enumerate(categories):
        where = f"categories[{i}]"
        unknown = set(raw) - _CATEGORY_FIELDS
        if unknown:
            errors[where] = [f"Unknown fields: {', '.join(sorted(unknown))}."]
            continue
        key = str(raw.get("key") or "")
        if not key or slugify(key).replace("-", "_") != key:
            errors[f"{where}.key"] = [
                f"{key!r} is not a key: lower-case letters, digits and underscores."]
        elif key == OVERALL:
            errors[f"{where}.key"] = [f"{OVERALL!r} is reserved (qa:{OVERALL} is the result)."]
        elif key in seen:
            errors[f"{where}.key"] = [f"{key!r} appears twice."]
        seen.add(key)
        scale = raw.get("scale")
        if scale not in Scale.values:
            errors[f"{where}.scale"] = [
                f"{scale!r} is not a scale; one of {', '.join(Scale.values)}."]
        try:
            weight = float(raw.get("weight", 1.0))
        except (TypeError, ValueError):
            weight = -1.0
        if not weight >= 0:
            errors[f"{where}.weight"] = ["The weight must be a number of 0 or more."]
        clean.append({
            "key": key, "label": str(raw.get("label") or key.replace("_", " ").capitalize()),
            "help_text": str(raw.get("help_text") or ""), "scale": scale,
            "na_allowed": bool(raw.get("na_allowed", False)), "weight": weight,
            "critical": bool(raw.get("critical", False)), "position": i,
        })
    if not errors and not any(c["weight"] > 0 for c in clean):
        errors["categories"] = ["At least one category must weigh more than 0."]
    if errors:
        raise QAError(errors)
    return clean


def scorecard_create(*, key: str, name: str, categories: Sequence[Mapping[str, Any]],
                     by: str = "") -> ScorecardVersion:
    """A new scorecard with its version 1."""
    clean = _categories_clean(categories)
    with transaction.atomic():
        if Scorecard.objects.filter(key=key).exists():
            raise QAError({"key": [f"A scorecard {key!r} exists; edit it instead."]})
        scorecard = Scorecard.objects.create(key=key, name=name)
        return _version_write(scorecard=scorecard, number=1, categories=clean, by=by, note="")


def scorecard_edit(*, scorecard: Scorecard, categories: Sequence[Mapping[str, Any]],
                   by: str = "", note: str = "") -> ScorecardVersion:
    """Editing a scorecard is writing its next version; earlier versions, and the reviews
    pointing at them, are left as they are."""
    clean = _categories_clean(categories)
    with transaction.atomic():
        Scorecard.objects.select_for_update().get(pk=scorecard.pk)  # numbers in turn
        last = scorecard.versions.aggregate(n=Max("number"))["n"] or 0
        return _version_write(scorecard=scorecard, number=last + 1, categories=clean, by=by,
                              note=note)


def _version_write(*, scorecard: Scorecard, number: int, categories: list[dict[str, Any]],
                   by: str, note: str) -> ScorecardVersion:
    version = ScorecardVersion.objects.create(scorecard=scorecard, number=number,
                                              created_by=by, note=note)
    ScorecardCategory.objects.bulk_create(
        [ScorecardCategory(version=version, **c) for c in categories])
    return version


def scorecard_default_ensure() -> ScorecardVersion:
    """The default scorecard's current version, created (version 1 from
    DEFAULT_CATEGORIES) on first use. Idempotent, also when two callers race."""
    scorecard = Scorecard.objects.filter(key=DEFAULT_SCORECARD_KEY).first()
    if scorecard is None:
        try:
            return scorecard_create(key=DEFAULT_SCORECARD_KEY, name="Default scorecard",
                                    categories=DEFAULT_CATEGORIES, by="system")
        except (QAError, IntegrityError):
            scorecard = Scorecard.objects.get(key=DEFAULT_SCORECARD_KEY)
    version = scorecard.versions.order_by("-number").first()
    if version is None:  # a scorecard row whose version 1 was never written
        with transaction.atomic():
            Scorecard.objects.select_for_update().get(pk=scorecard.pk)
            version = scorecard.versions.order_by("-number").first() or _version_write(
                scorecard=scorecard, number=1, categories=_categories_clean(DEFAULT_CATEGORIES),
                by="system", note="")
    return version


# --- reviews -----------------------------------------------------------------------------


def answer_normalize(*, scale: str, value: int) -> float:
    """A stored answer on 0-1, as its Score row holds it: yes 1, no 0; 1-5 -> (v - 1) / 4."""
    if scale == Scale.YES_NO:
        return float(value)
    return (value - 1) / 4


def answer_fails(*, scale: str, value: int) -> bool:
    """A failing answer (what fails a review on a critical category): no; 1 or 2 on 1-5."""
    return answer_normalize(scale=scale, value=value) < 0.5


def _answer_coerce(raw: Answer | Mapping[str, Any] | Any) -> Answer:
    if isinstance(raw, Answer):
        return raw
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"value", "na", "comment"}
        if unknown:
            raise ValueError(f"unknown fields {', '.join(sorted(unknown))}")
        return Answer(value=raw.get("value"), na=bool(raw.get("na", False)),
                      comment=str(raw.get("comment") or ""))
    return Answer(value=raw)


def _value_clean(category: ScorecardCategory, answer: Answer) -> int | None:
    """The stored value (None for N/A), or a ValueError saying what is wrong."""
    if answer.na:
        if answer.value is not None:
            raise ValueError("give a value or N/A, not both")
        if not category.na_allowed:
            raise ValueError("N/A is not allowed for this category")
        return None
    value = answer.value
    if not isinstance(value, str | int | float):  # bool is an int; a list or dict is not
        raise ValueError(f"{answer.value!r} is not a single value")
    if isinstance(value, str):
        value = value.strip().lower()
    if category.scale == Scale.YES_NO:
        if value in _YES:
            return 1
        if value in _NO:
            return 0
        raise ValueError(f"{answer.value!r} is not yes or no")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ValueError(f"{answer.value!r} is not a whole number from 1 to 5")
    return value


def _review_input_clean(
    *, conversation: Conversation, version: ScorecardVersion,
    answers: Mapping[str, Any], notes: Sequence[MessageNote | Mapping[str, Any]],
    verdicts: Sequence[FlagVerdict | Mapping[str, Any]], complete: bool,
) -> tuple[list[ReviewAnswer], list[ReviewMessageNote], list[tuple[Flag, str, str]]]:
    """Every problem at once, as QAError; else the rows to write (review unset)."""
    errors: dict[str, list[str]] = {}
    categories = {c.key: c for c in version.categories.all()}
    rows: list[ReviewAnswer] = []
    for key, raw in answers.items():
        category = categories.get(key)
        if category is None:
            errors[f"answers.{key}"] = [
                f"Not a category of {version}; its categories: {', '.join(categories)}."]
            continue
        try:
            answer = _answer_coerce(raw)
            value = _value_clean(category, answer)
        except ValueError as exc:
            errors[f"answers.{key}"] = [f"{category.label}: {exc}."]
            continue
        rows.append(ReviewAnswer(category=category, value=value, na=value is None,
                                 comment=answer.comment))
    if complete:
        missing = [k for k in categories if k not in answers]
        if missing:
            errors["answers"] = [
                f"Unanswered: {', '.join(categories[k].label for k in missing)} (answer "
                "each, or N/A where the category allows it)."]
            for key in missing:  # and next to each field, named as the reviewer sees it
                errors.setdefault(f"answers.{key}", [
                    f"{categories[key].label}: no answer yet"
                    + (" (or N/A)." if categories[key].na_allowed else ".")])

    note_rows: list[ReviewMessageNote] = []
    note_list = [n if isinstance(n, MessageNote) else MessageNote(**n) for n in notes]
    known = set(Message.objects.filter(conversation=conversation,
                                       pk__in=[n.message_id for n in note_list])
                .values_list("pk", flat=True))
    for i, note in enumerate(note_list):
        if note.message_id not in known:
            errors[f"notes[{i}].message_id"] = [
                f"Message {note.message_id} is not in conversation {conversation.pk}."]
        elif not (note.label.strip() or note.comment.strip()):
            errors[f"notes[{i}]"] = ["A note needs a label or a comment."]
        else:
            note_rows.append(ReviewMessageNote(message_id=note.message_id,
                                               label=note.label.strip(), comment=note.comment))

    flags = {f.pk: f for f in Flag.objects.filter(conversation=conversation)}
    verdict_rows: list[tuple[Flag, str, str]] = []
    judged: set[int] = set()
    for raw in verdicts:
        v = raw if isinstance(raw, FlagVerdict) else FlagVerdict(**raw)
        flag = flags.get(v.flag_id)
        if flag is None:
            errors[f"flags.{v.flag_id}"] = [
                f"Flag {v.flag_id} is not a flag of conversation {conversation.pk}."]
        elif v.verdict not in ReviewFlagVerdict.Verdict.values:
            errors[f"flags.{v.flag_id}"] = [
                f"{v.verdict!r} is not a verdict; one of "
                f"{', '.join(ReviewFlagVerdict.Verdict.values)}."]
        elif v.flag_id in judged:
            errors[f"flags.{v.flag_id}"] = ["Two verdicts on one flag."]
        else:
            judged.add(v.flag_id)
            verdict_rows.append((flag, v.verdict, v.comment))
    if complete:
        open_ids = sorted(pk for pk, f in flags.items()
                          if f.status in Flag.ACTIVE_STATUSES and pk not in judged)
        if open_ids:
            errors["flags"] = ["No verdict on open flag(s) "
                               f"{', '.join(map(str, open_ids))}: confirm each one or mark "
                               "it a false positive."]
            for pk in open_ids:
                errors.setdefault(f"flags.{pk}", [
                    "No verdict yet: confirm it or mark it a false positive."])
    if errors:
        raise QAError(errors)
    return rows, note_rows, verdict_rows


def _review_lock(*, reviewer: AbstractBaseUser, conversation: Conversation,
                 version: ScorecardVersion) -> Review:
    """The reviewer's review of this conversation and version, created as a draft if
    missing, locked for this transaction (a double submit waits, then finds it done)."""
    review, _ = Review.objects.get_or_create(reviewer=reviewer, conversation=conversation,
                                             version=version)
    return Review.objects.select_for_update().get(pk=review.pk)


def _review_content_replace(*, review: Review, answers: list[ReviewAnswer],
                            notes: list[ReviewMessageNote],
                            verdicts: list[tuple[Flag, str, str]]) -> None:
    review.answers.all().delete()
    review.message_notes.all().delete()
    review.flag_verdicts.all().delete()
    for row in answers:
        row.review = review
    for row in notes:
        row.review = review
    ReviewAnswer.objects.bulk_create(answers)
    ReviewMessageNote.objects.bulk_create(notes)
    ReviewFlagVerdict.objects.bulk_create([
        ReviewFlagVerdict(review=review, flag=flag, kind=flag.kind, verdict=verdict,
                          comment=comment)
        for flag, verdict, comment in verdicts
    ])


def review_draft_save(
    *, reviewer: AbstractBaseUser, conversation: Conversation, version: ScorecardVersion,
    answers: Mapping[str, Any], notes: Sequence[MessageNote | Mapping[str, Any]] = (),
    verdicts: Sequence[FlagVerdict | Mapping[str, Any]] = (), comment: str = "",
) -> Review:
    """Save work in progress: what is given is validated (a draft may leave categories and
    flags unanswered) and replaces the draft's content. Flags are not touched and no Score
    is written until submit. A submitted review is corrected by submitting again."""
    rows, note_rows, verdict_rows = _review_input_clean(
        conversation=conversation, version=version, answers=answers, notes=notes,
        verdicts=verdicts, complete=False)
    with transaction.atomic():
        review = _review_lock(reviewer=reviewer, conversation=conversation, version=version)
        if review.status == Review.Status.SUBMITTED:
            raise QAError({"review": ["This review is submitted; submit again to correct it."]})
        _review_content_replace(review=review, answers=rows, notes=note_rows,
                                verdicts=verdict_rows)
        review.comment = comment
        review.save(update_fields=["comment", "updated_at"])
    return review


def _result(answers: list[ReviewAnswer]) -> tuple[float | None, list[str]]:
    total = weights = 0.0
    failed: list[str] = []
    for a in answers:
        if a.na:
            continue
        c = a.category
        if c.weight > 0:
            total += c.weight * answer_normalize(scale=c.scale, value=a.value)
            weights += c.weight
        if c.critical and answer_fails(scale=c.scale, value=a.value):
            failed.append(c.key)
    return (round(100 * total / weights, 2) if weights else None), failed


def review_submit(
    *, reviewer: AbstractBaseUser, conversation: Conversation, version: ScorecardVersion,
    answers: Mapping[str, Any], notes: Sequence[MessageNote | Mapping[str, Any]] = (),
    verdicts: Sequence[FlagVerdict | Mapping[str, Any]] = (), comment: str = "",
    apply_verdicts: bool = True,
) -> Review:
    """Submit a complete review: every category of the version answered (or N/A where
    allowed) and a verdict on every open flag of the conversation.

    Idempotent per (reviewer, conversation, version): the same submit again changes
    nothing; a different one corrects the review (first submitted_at kept). Writes the
    human Score rows (qa:<key>, and qa:overall = result / 100) and sets each flag judged a
    false positive to that status through flag_set_status, recorded as the reviewer.

    `apply_verdicts=False` records the verdicts without touching the flags (a double
    review whose other reviewer is still blind); `review_verdicts_apply` applies them
    later."""
    rows, note_rows, verdict_rows = _review_input_clean(
        conversation=conversation, version=version, answers=answers, notes=notes,
        verdicts=verdicts, complete=True)
    username = reviewer.get_username()
    with transaction.atomic():
        review = _review_lock(reviewer=reviewer, conversation=conversation, version=version)
        _review_content_replace(review=review, answers=rows, notes=note_rows,
                                verdicts=verdict_rows)
        score_100, failed = _result(rows)
        review.status = Review.Status.SUBMITTED
        review.score_100 = score_100
        review.failed = bool(failed)
        review.failed_categories = failed
        review.comment = comment
        review.submitted_at = review.submitted_at or timezone.now()
        review.save()
        _review_scores_write(review=review, answers=rows, username=username)
        # The outcome reports count QA scores by the conversation's start day.
        dashboard_days_mark(conversation_ids=[conversation.pk])
        if apply_verdicts:
            _false_positives_set(review=review, flags=[
                flag for flag, verdict, _ in verdict_rows
                if verdict == ReviewFlagVerdict.Verdict.FALSE_POSITIVE], since=None)
    return review


def _false_positives_set(*, review: Review, flags: Sequence[Flag],
                         since: Any) -> None:
    """Set each flag a false positive as the review's reviewer, unless it is one already
    or (with `since`) someone changed its status after that time."""
    for flag in flags:
        if flag.status == Flag.Status.FALSE_POSITIVE:
            continue
        if since is not None and flag.status_changed_at and flag.status_changed_at > since:
            continue  # a later decision (a manager reopened it) is not overridden
        flag_set_status(flag=flag, status=Flag.Status.FALSE_POSITIVE,
                        by=review.reviewer.get_username(),
                        note=f"QA review {review.pk}: false positive")


def review_verdicts_apply(*, review: Review) -> None:
    """Apply a submitted review's false-positive verdicts that `review_submit(...,
    apply_verdicts=False)` recorded without applying. Idempotent: a flag already a false
    positive, or whose status someone changed after the review was last saved, is left
    alone."""
    if review.status != Review.Status.SUBMITTED:
        return
    with transaction.atomic():
        flags = list(Flag.objects.select_for_update().filter(
            qa_verdicts__review=review,
            qa_verdicts__verdict=ReviewFlagVerdict.Verdict.FALSE_POSITIVE))
        _false_positives_set(review=review, flags=flags, since=review.updated_at)


def _review_scores_write(*, review: Review, answers: list[ReviewAnswer],
                         username: str) -> None:
    conversation = review.conversation
    brand = conversation_brands_resolve(conversations=[conversation])[conversation.pk]
    version = review.version
    common = {
        "subject_type": Score.SubjectType.CONVERSATION, "subject_id": conversation.pk,
        "source": Score.Source.HUMAN, "author": username,
    }
    defaults = {
        "conversation": conversation, "message": None, "brand": brand,
        "channel": conversation.channel,
        # A reviewer's judgment of the whole conversation: no message author applies.
        "author_kind": AuthorKind.HUMAN,
        # The conversation's time, so weekly trends bucket automated and human alike.
        "occurred_at": conversation.started_at,
    }
    base = {"review": review.pk, "scorecard": version.scorecard.key, "version": version.number}
    na_names = []
    for a in answers:
        name = f"{SCORE_PREFIX}{a.category.key}"
        if a.na:
            na_names.append(name)
            continue
        Score.objects.update_or_create(**common, name=name, defaults={
            **defaults, "value": answer_normalize(scale=a.category.scale, value=a.value),
            "explanations": {**base, "scale": a.category.scale, "answer": a.value,
                             "comment": a.comment},
        })
    # A category now N/A keeps no number from an earlier submit.
    Score.objects.filter(**common, name__in=na_names).delete()
    overall = f"{SCORE_PREFIX}{OVERALL}"
    if review.score_100 is None:
        Score.objects.filter(**common, name=overall).delete()
    else:
        Score.objects.update_or_create(**common, name=overall, defaults={
            **defaults, "value": review.score_100 / 100,
            "explanations": {**base, "score_100": review.score_100, "failed": review.failed,
                             "failed_categories": review.failed_categories},
        })
