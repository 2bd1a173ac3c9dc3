"""`make validate-scoring`: agreement of the scorers with labelled data shipped in wheels
(see scoring/validation.py and docs/scoring.md). No database, no network."""

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HANDOFF_AUDITOR_DATA_DIR", tempfile.mkdtemp(prefix="validate-"))

import django  # noqa: E402

django.setup()

from scoring.validation import (  # noqa: E402
    icwsm_report,
    own_split_report,
    tone_languages_report,
    validation_report,
)


def rounded(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


limit = int(os.environ.get("VALIDATE_LIMIT", "0")) or None
print("1/4 wheel corpora (held-out tweets, CMU dictionary, register proxy)...", flush=True)
report = validation_report(limit=limit)
print("2/4 own held-out split of the training corpora...", flush=True)
report["own_held_out"] = own_split_report(limit=limit)
tarball = os.environ.get("ICWSM_TARBALL")
if tarball:
    print("3/4 ICWSM 2014 human-rated sentence sets (test only)...", flush=True)
    report["icwsm_2014"] = icwsm_report(Path(tarball), limit=limit,
                                        embeddings=os.environ.get("VALIDATE_EMBEDDINGS") == "1")
else:
    print("3/4 skipped: set ICWSM_TARBALL (make validate-scoring fetches it)", flush=True)
print("4/4 Spanish, Portuguese, French, German: the hand-labelled set's held-out part...",
      flush=True)
rows = json.loads((ROOT / "tests" / "fixtures" / "scoring" / "tone_languages.json")
                  .read_text())["rows"]
report["languages_held_out"] = tone_languages_report(rows, split="test")
print(json.dumps(rounded(report), indent=2))
