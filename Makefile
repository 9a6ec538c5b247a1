# The two commands: `make run` (the portal with a demo province) and `make test` (the whole suite).
# Both create .venv and install on first use; with no DATABASE_URL / REDIS_URL they start an
# embedded PostgreSQL and Redis with their data under .data/.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run serve test lint check sysdeps sysdeps-run messages totp bench-gradebook bench-gradebook-page bench-provisioning bench-render bench-signing bench-signing-scale bench-forwarding bench-dashboard bench-progress typecheck clean-data mutate

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# make run installs what it needs too (SoftHSM2, WeasyPrint's libraries: the `run` packages of
# scripts/system-packages.txt) as root, or names them and stops.
run: $(STAMP) sysdeps-run
	$(PY) scripts/devenv.py run

# The same processes and data as make run, the web process as production runs it: DEBUG off,
# gunicorn (config/gunicorn.py) over TLS on https://127.0.0.1:8443 with a certificate from the
# development CA (.data/ca/root.pem), static files collected and served by WhiteNoise, the secret
# key made once in .data/secret-key. docs/operations.md, "Production deployment".
serve: $(STAMP) sysdeps-run
	$(PY) scripts/devenv.py serve

test: $(STAMP) sysdeps
	$(PY) scripts/devenv.py exec -- $(PY) -m pytest $(PYTEST_ARGS)

# System packages (scripts/system-packages.txt): installed when root, else named (and a stop).
sysdeps:
	@bash scripts/sysdeps.sh test

sysdeps-run:
	@bash scripts/sysdeps.sh run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports  # the chain of apps, design.md §2 ([tool.importlinter] in pyproject.toml)

# Types of the apps (mypy with django-stubs; settings imported, no database).
typecheck: $(STAMP)
	HOCBA_TESTING=1 $(VENV)/bin/mypy config portal schools transcripts signing registry reference

# Migrations must match the models (runs without a database).
check: $(STAMP)
	HOCBA_TESTING=1 $(PY) manage.py makemigrations --check --dry-run

# DJANGO_DEBUG=1: compilemessages reads the settings, which want a secret key outside DEBUG.
messages: $(STAMP)
	DJANGO_DEBUG=1 $(PY) manage.py makemessages -l vi -l en --no-obsolete -i ".venv/*" -i ".data/*" -i "tests/*" -i "bench/*" -i "scripts/*"
	DJANGO_DEBUG=1 $(PY) manage.py compilemessages --ignore=.venv

# The current TOTP code of a demo account: make totp u=th.hieutruong
totp: $(STAMP)
	@$(PY) scripts/devenv.py exec -- $(PY) manage.py demo_totp $(u)

bench-gradebook: $(STAMP)
	$(PY) scripts/devenv.py exec -- $(PY) bench/gradebook.py $(ARGS)
	$(PY) scripts/devenv.py exec -- $(PY) bench/evaluate.py

# The grade book page on a phone and a slow link (400 kbit/s, 400 ms): gunicorn as in production,
# Debian's chromium through Playwright; transfer size, first paint, time to interactive (about 1½ min).
bench-gradebook-page: $(STAMP)
	$(PY) scripts/devenv.py exec -- $(PY) bench/gradebook_page.py $(ARGS)

bench-provisioning: $(STAMP)
	$(PY) scripts/devenv.py exec -- $(PY) bench/provisioning.py $(ARGS)

bench-render: $(STAMP)
	$(PY) scripts/devenv.py exec -- $(PY) bench/render.py $(ARGS)

bench-signing: $(STAMP)
	$(PY) scripts/devenv.py exec -- $(PY) bench/signing.py $(ARGS)

# Signing at scale (issue 13): batches of 40 and 1,000 through PKCS#12 and an 80 ms remote service,
# with and without a TSA, beside the raw key rates (~3 minutes). ARGS="--tsa-delay-ms 80 --profile".
bench-signing-scale: $(STAMP)
	$(PY) scripts/devenv.py exec -- $(PY) bench/signing_scale.py $(ARGS)

# Records/s forwarded to the reference Ministry repository, beside bare POSTs (~3 minutes).
bench-forwarding: $(STAMP)
	$(PY) scripts/devenv.py exec -- $(PY) bench/forwarding.py $(ARGS)

# The department and division dashboards over 1,000 schools and 2,000,000 students (the data set
# is kept in the database hocba_bench_dashboard; about a minute, ten seconds more the first time).
bench-dashboard: $(STAMP)
	$(PY) scripts/devenv.py exec -- $(PY) bench/dashboard.py $(ARGS)

# A progress row's recount at a school of 2,025 students and of 200, against the record changes it
# accompanies (the data set is kept in the database hocba_bench_progress; about 4 minutes).
bench-progress: $(STAMP)
	$(PY) scripts/devenv.py exec -- $(PY) bench/progress.py $(ARGS)

# Mutation testing of the guard-bearing modules (not in CI; ~1 hour): scripts/mutate.py works on a
# copy of the tree, never in place. MUTATE_ARGS="--module signing/verify.py --head" narrows it.
mutate: $(STAMP)
	$(PY) scripts/devenv.py exec -- $(PY) scripts/mutate.py --report .data/mutation.json $(MUTATE_ARGS)

clean-data:
	rm -rf .data

# gunicorn's worker models (sync 2-5, gthread 2x4 and 3x2, sync 4 --preload) under the season's
# request mix at 8, 16 and 32 clients: req/s, p50/p95/p99, memory, connections (≤ 6 minutes).
.PHONY: bench-web-workers
bench-web-workers: $(STAMP)
	$(PY) scripts/devenv.py exec -- $(PY) bench/web_workers.py $(ARGS)

# The season's load test (issue 16): a province of 20 schools on the production stack (gunicorn,
# Celery pools, beat, the reference Ministry repository), locust headless for 90 s, then the data
# check (~5 minutes). ARGS="--workers-matrix sync:2,sync:4,gthread:2x4 --users 60".
.PHONY: bench-load
bench-load: $(STAMP)
	$(PY) scripts/devenv.py exec -- $(PY) bench/load/run.py $(ARGS)
