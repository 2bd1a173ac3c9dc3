import sys
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from demo.alerts import demo_alerts_seed
from demo.bulk import BulkSeedBusy, demo_bulk_seed
from demo.events import (
    EMAIL_THREADS,
    JOURNEYS,
    QUALITY_JOURNEYS,
    demo_email_threads_seed,
    demo_web_journeys_seed,
)
from demo.figures import demo_figures_build
from demo.handoffs import demo_handoff_scenarios_seed
from demo.journeys import SCENARIOS
from demo.outcomes import REPORT_JOURNEYS, demo_report_journeys_seed
from demo.qa import REVIEWERS, DemoQAReport, demo_qa_seed
from demo.replay import demo_scenarios_seed
from demo.scenarios import SCENARIOS as HANDOFF_SCENARIOS


class Command(BaseCommand):
    help = (
        "Demo data. Without options: about 40 hand-written WhatsApp and SMS support journeys "
        "(many languages, emoji, media, AI and human replies, handoffs, delivery failures), "
        "replayed through the real Twilio ingest path with raw events behind every customer "
        "message and status callback, then the handoff scenario library "
        "(demo/scenarios.py) played over the last two weeks with its sweeps; "
        "run it any number of times, it adds nothing twice. "
        "With --conversations N: tops synthetic conversations up to N for benchmarks, written "
        "straight to the tables (COPY on PostgreSQL). Those bulk rows have NO raw events "
        "behind them, so reprocess_events cannot rebuild them; they sit on their own "
        "business number with metadata {\"demo\": \"bulk\"}."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--conversations", type=int, metavar="N",
            help="bulk mode: make sure N synthetic conversations exist (adds only the missing)",
        )
        parser.add_argument(
            "--messages-per-conversation", type=int, default=5, metavar="M",
            help="bulk mode: average messages per conversation (default 5)",
        )
        parser.add_argument(
            "--batch-size", type=int, default=5000, metavar="B",
            help="bulk mode: conversations per transaction (default 5000)",
        )
        parser.add_argument(
            "--workers", type=int, default=2, metavar="W",
            help="bulk mode, PostgreSQL: batches written in parallel (default 2)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["conversations"] is None:
            self._scenarios()
        else:
            self._bulk(options)

    def _scenarios(self) -> None:
        report = demo_scenarios_seed()
        web_added, web_failed = demo_web_journeys_seed()
        mail_added, mail_failed = demo_email_threads_seed()
        outcome_added, outcome_failed = demo_report_journeys_seed()
        # Last: their sweeps also see the journeys above, as beat would.
        handoff_added, handoff_failed = demo_handoff_scenarios_seed()
        report.failed.extend(web_failed + mail_failed + outcome_failed + handoff_failed)
        report.raw_events += web_added + mail_added + outcome_added + handoff_added
        if report.failed:
            # A journey the normalizer rejects is a bug in the demo data or the parser.
            raise CommandError(
                f"{len(report.failed)} demo raw events failed to normalize: "
                f"{', '.join(report.failed[:5])} (see RawEvent.error)"
            )
        journeys = (
            len(SCENARIOS) + len(JOURNEYS) + len(QUALITY_JOURNEYS) + len(EMAIL_THREADS)
            + len(REPORT_JOURNEYS) + len(HANDOFF_SCENARIOS)
        )
        qa = demo_qa_seed()
        alerts = demo_alerts_seed()
        if alerts.rules:
            self.stdout.write(f"alerts: {alerts.rules} rules, {alerts.alerts} alerts")
        figures = demo_figures_build(say=self.stdout.write)
        if figures["scored"] or figures["days"]:
            self.stdout.write(f"dashboards ready: {figures['scored']} messages scored, "
                              f"{figures['days']} days of figures rebuilt")
        if report.added_nothing:
            self.stdout.write(f"demo data already present ({journeys} journeys)")
            if qa.queues:
                self._qa_report(qa)
            return
        self.stdout.write(
            f"seeded {report.conversations} conversations, {report.messages} messages, "
            f"{report.status_callbacks} status callbacks, {web_added} web-chat journeys "
            f"with AI steps, handoff events and outcomes, {outcome_added} web-chat journeys "
            f"for the reports (NPS, revenue, teams, two AI releases), {mail_added} e-mails, and "
            f"{len(HANDOFF_SCENARIOS)} handoff scenarios in {handoff_added} deliveries "
            f"({report.raw_events} raw events)"
        )
        self._qa_report(qa)

    def _qa_report(self, qa: DemoQAReport) -> None:
        if qa.queues:
            self.stdout.write(f"QA: {qa.queues} queues with {qa.items} conversations, "
                              f"{qa.reviews} reviews by {', '.join(REVIEWERS)}")

    def _bulk(self, options: dict[str, Any]) -> None:
        wanted = options["conversations"]
        if wanted < 0 or min(
            options["messages_per_conversation"], options["batch_size"], options["workers"]
        ) < 1:
            raise CommandError(
                "--conversations must be >= 0; --messages-per-conversation, --batch-size and "
                "--workers >= 1"
            )
        started = time.monotonic()
        bar: tqdm | None = None

        def progress(added: int, missing: int) -> None:
            nonlocal bar
            if bar is None:  # created once the number missing is known
                if not missing:
                    return
                bar = tqdm(
                    total=missing, unit="conv", disable=options["no_progress"],
                    file=sys.stderr,
                )
            bar.update(added)

        try:
            report = demo_bulk_seed(
                conversations=wanted,
                messages_per_conversation=options["messages_per_conversation"],
                batch_size=options["batch_size"],
                workers=options["workers"],
                on_progress=progress,
            )
        except BulkSeedBusy as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if bar is not None:
                bar.close()
        elapsed = time.monotonic() - started
        if not report.conversations:
            self.stdout.write(
                f"bulk demo: {report.present} conversations present, {wanted} wanted: "
                f"nothing to add ({elapsed:.1f}s)"
            )
            return
        self.stdout.write(
            f"bulk demo: added {report.conversations} conversations "
            f"({report.present} were present), {report.participants} participants, "
            f"{report.messages} messages, {report.status_events} status events: "
            f"{report.rows} rows in {elapsed:.1f}s ({report.rows / elapsed:,.0f} rows/s)"
        )
