# The two commands a newcomer needs: `make run` and `make test` (see README).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Two stamps: running needs the plugin and the server extra only; the tests, linters and
# benchmarks add `dev` (pytest, Playwright, ...) and `embeddings` (torch, about 2 GB).
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

# `make test` runs against the real servers on this machine (see .ci/run to start them).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/handoff_auditor
TEST_BROKER_URL ?= redis://127.0.0.1:6379/0
LOCAL_ONLY_SECRET_KEY := insecure-local-only-handoff-auditor-demo-key-change-me

.PHONY: run test install install-run screenshots lint bench-ingest bench-events bench-events-cpu bench-backlog bench-sweep bench-views bench-scoring bench-qa bench-alerts bench-alerts-outage validate-scoring validate-quality seed-large clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[server]'
	touch $@

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[dev,embeddings]'
	touch $(RUN_STAMP) $@

install-run: $(RUN_STAMP)
install: $(STAMP)

# The demo's support mailbox, so its e-mail replies read as ours (see README, E-mail).
run: export HANDOFF_AUDITOR_EMAIL_ADDRESSES ?= support@brisa-home.example
# A local-only key: without SECRET_KEY and with debug off, Django refuses to start (README,
# Deploying safely). Only `make run` (and bin/run) supply this one.
run: export SECRET_KEY ?= $(LOCAL_ONLY_SECRET_KEY)
run: install-run
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo
	$(PY) manage.py ensure_demo_user
	exec bin/run

# The tests' own processes (a Celery worker, the make-run smoke run) need a key too.
test: export SECRET_KEY ?= $(LOCAL_ONLY_SECRET_KEY)
test: install
	bin/ensure-chromium
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
		$(PY) -m pytest $(PYTEST_ARGS)

# PNGs of every page at 1440 and 390 px into docs/screenshots/ (README, Screenshots), from
# the demo seeded into its own database under var/screenshots/.
screenshots: export SECRET_KEY ?= $(LOCAL_ONLY_SECRET_KEY)
screenshots: install
	bin/ensure-chromium
	$(PY) bin/screenshots

lint: install
	$(VENV)/bin/ruff check .

# Benchmarks (figures printed; see bench/README.md): local tools, so the local-only key.
bench-ingest bench-events bench-events-cpu bench-sweep bench-views bench-scoring bench-qa \
bench-otlp bench-alerts bench-alerts-outage bench-backlog validate-scoring validate-quality seed-large: export SECRET_KEY ?= $(LOCAL_ONLY_SECRET_KEY)
bench-ingest: install
	$(PY) bench/ingest.py

# Needs wrk for bench-ingest (the script runs apt-get install -y wrk if it is missing), Redis
# on 127.0.0.1 (db 10 is the benches'), and pyinstrument for bench-events' profile.
bench-events: install
	$(PIP) install --quiet pyinstrument
	$(PY) bench/events.py

# OTLP spans accepted and applied, with their floors (/healthz; the same steps as ai.step
# events) measured in the same run.
bench-otlp: install
	$(PY) bench/otlp.py

bench-events-cpu: install
	$(PY) bench/events_cpu.py

# The applier's resident set while one applier drains a 1,000,000-event backlog (about half
# an hour here; BENCH_BACKLOG_EVENTS=100000 for a look).
bench-backlog: install
	$(PY) bench/backlog.py

# 1,000,000 open handoffs, 1% due; BENCH_SWEEP_ARGS="--open 200000 --repeats 3" for a look.
bench-sweep: install
	$(PY) bench/sweep.py $(BENCH_SWEEP_ARGS)

# 1,000,000 conversations / 5,000,000 messages, then the pages; BENCH_VIEWS_ARGS="--conversations
# 100000 --repeats 10" for a look, "--keep" to measure again without seeding.
bench-views: install
	$(PY) bench/views.py $(BENCH_VIEWS_ARGS)

# BENCH_SCORING_MESSAGES=10000 for a quick look (default 100,000).
bench-scoring: install
	$(PY) bench/scoring.py

# QA queues: fill 200,000 conversations, then 4 reviewers taking items at once
# (BENCH_QA_ARGS="--conversations 20000" for a quick look).
bench-qa: install
	$(PY) bench/qa.py $(BENCH_QA_ARGS)

# Alerts: 200 rules over 1,000,000 conversations, then deliveries to a local receiver
# (BENCH_ALERTS_ARGS="--conversations 50000" for a quick look).
bench-alerts: install
	$(PY) bench/alerts.py $(BENCH_ALERTS_ARGS)

# The receiver down BENCH_ALERTS_OUTAGE_S seconds (default 300), then back (bench/README.md).
bench-alerts-outage: install
	$(PY) bench/alerts_outage.py $(BENCH_ALERTS_ARGS)

# Agreement of the scorers with labelled data shipped in wheels (docs/scoring.md).
# The ICWSM 2014 human-rated sets ship only in vaderSentiment 3.2.1's source distribution:
# fetched once with pip into var/validation (a registry, at validation time; never at run
# time, never read by training). VALIDATE_EMBEDDINGS=1 adds the embeddings variant.
ICWSM_SDIST := var/validation/vaderSentiment-3.2.1.tar.gz
$(ICWSM_SDIST):
	$(PIP) download --quiet --no-deps --no-binary :all: -d var/validation vaderSentiment==3.2.1

validate-scoring: install $(ICWSM_SDIST)
	ICWSM_TARBALL=$(ICWSM_SDIST) $(PY) bench/validate_scoring.py

# Precision and recall of the answer-quality checks on the hand-written labelled set in
# tests/fixtures/quality/ (docs/answer-quality.md); VALIDATE_QUALITY_MISSES=1 names the
# tune split's misses.
validate-quality: install
	$(PY) bench/validate_quality.py

clean:
	rm -rf $(VENV) var *.egg-info
