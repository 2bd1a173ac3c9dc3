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

from scoring.validation import validation_report  # noqa: E402

limit = int(os.environ.get("VALIDATE_LIMIT", "0")) or None
report = validation_report(limit=limit)
print(json.dumps({k: {n: round(v, 4) if isinstance(v, float) else v for n, v in figures.items()}
                  for k, figures in report.items()}, indent=2))
