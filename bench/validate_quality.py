"""`make validate-quality`: precision and recall of the answer-quality checks on the
hand-written labelled set in tests/fixtures/quality/ (docs/answer-quality.md), per split.
Thresholds and lexicons are tuned on the "tune" split only; the target (precision >= 0.9
at recall >= 0.7 per check) is judged on "held_out". No database, no network.
VALIDATE_QUALITY_MISSES=1 lists the cases each check got wrong (tune split only, unless
VALIDATE_QUALITY_MISSES=all). VALIDATE_QUALITY_SPLIT=tune scores the tune split alone (what
tuning reads: the held-out figures are not even computed). VALIDATE_QUALITY_EMBEDDINGS=1 turns
on the embeddings variant of ungrounded_answer (QUALITY_EMBEDDINGS; needs the `embeddings`
extra)."""

import logging
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HANDOFF_AUDITOR_DATA_DIR", tempfile.mkdtemp(prefix="validate-"))
os.environ.setdefault("SECRET_KEY", "validate-quality-local-only")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

if os.environ.get("VALIDATE_QUALITY_EMBEDDINGS", "") not in ("", "0"):
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)  # no progress bars
    settings.HANDOFF_AUDITOR = {**getattr(settings, "HANDOFF_AUDITOR", {}),
                                "QUALITY_EMBEDDINGS": True}

from conversations.quality_set import (  # noqa: E402
    CHECKS,
    SPLITS,
    TARGET_PRECISION,
    TARGET_RECALL,
    evaluate,
    load_cases,
)


def fmt(value):
    return "  n/a" if value is None else f"{value:5.2f}"


cases = load_cases()
embeddings = os.environ.get("VALIDATE_QUALITY_EMBEDDINGS", "") not in ("", "0")
print("ungrounded_answer: lexical core" + (" + embeddings (QUALITY_EMBEDDINGS, "
      "all-MiniLM-L6-v2)" if embeddings else " only (QUALITY_EMBEDDINGS off)"))
languages = Counter(c["lang"] for c in cases)
splits = Counter(c["split"] for c in cases)
print(f"{len(cases)} cases; languages: "
      + ", ".join(f"{k} {v}" for k, v in sorted(languages.items()))
      + "; splits: " + ", ".join(f"{k} {v}" for k, v in sorted(splits.items())))
only = os.environ.get("VALIDATE_QUALITY_SPLIT", "")
if only and only not in SPLITS:
    sys.exit(f"VALIDATE_QUALITY_SPLIT must be one of {SPLITS}")
if only:
    cases = [c for c in cases if c["split"] == only]
report = evaluate(cases)
misses = os.environ.get("VALIDATE_QUALITY_MISSES", "")
missed = 0
for split in (only,) if only else SPLITS:
    print(f"\n{split} ({splits[split]} cases)")
    print(f"  {'check':<20} {'pos':>4} {'tp':>4} {'fp':>4} {'fn':>4}  {'prec':>5} {'rec':>5} "
          f"{'f1':>5}  target")
    for check in CHECKS:
        s = report[split][check]
        verdict = "PASS" if s.meets_target else "MISS"
        if split == "held_out" and not s.meets_target:
            missed += 1
        print(f"  {check:<20} {s.positives:>4} {s.tp:>4} {s.fp:>4} {s.fn:>4}  "
              f"{fmt(s.precision)} {fmt(s.recall)} {fmt(s.f1)}  "
              + (verdict if split == "held_out" else "(tuning)"))
        if misses and (split == "tune" or misses == "all"):
            if s.false_positives:
                print(f"      false positives: {', '.join(s.false_positives)}")
            if s.false_negatives:
                print(f"      false negatives: {', '.join(s.false_negatives)}")
if only != "tune":
    print(f"\ntarget: precision >= {TARGET_PRECISION} at recall >= {TARGET_RECALL} per check, "
          f"on held_out: {len(CHECKS) - missed}/{len(CHECKS)} checks meet it")
