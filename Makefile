# stylestudy: the two commands of the README are `make demo` and `make test`.
# Both are self-sufficient on a fresh machine: they create .venv, install,
# migrate and compile translations as needed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Second test pass: the same integration tests on PostgreSQL + Redis.
PG_URL ?= postgres://postgres@127.0.0.1:5432/stylestudy
REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: demo test install lint browser rstats messages bench load faults hardening clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Debian's Chromium drives the browser tests (no browser download) and prints the
# report's PDF; CJK fonts make the Chinese and Japanese screenshots legible;
# poppler-utils (pdfinfo, pdftoppm) checks and previews the printed report.
browser:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for the browser tests:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# R with lme4, lmerTest, emmeans and ordinal is the reference the crossed mixed
# model is tested against (tests/analysis/test_lme4_reference.py).
rstats:
	@if ! Rscript -e 'suppressMessages({library(lmerTest); library(emmeans); library(ordinal); library(jsonlite)})' >/dev/null 2>&1; then \
	  echo "installing Debian packages for the R reference tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    r-base-core r-cran-lme4 r-cran-lmertest r-cran-emmeans r-cran-ordinal r-cran-jsonlite >/dev/null; \
	fi

messages: $(STAMP)
	$(PY) manage.py compilemessages --ignore=.venv -v 0

demo: $(STAMP) messages
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py demo

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) browser rstats messages lint
	$(PY) -m pytest
	@if pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then \
	  echo "== integration tests on PostgreSQL + Redis =="; \
	  DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(REDIS_URL) STYLESTUDY_EXPECT_SERVICES=1 \
	    $(PY) -m pytest -m integration tests/integration; \
	elif [ -n "$$CI" ]; then \
	  echo "PostgreSQL or Redis is not reachable; CI needs both" >&2; exit 1; \
	else \
	  echo "PostgreSQL/Redis not reachable: skipped the services pass (CI runs it)"; \
	fi

bench: $(STAMP)
	$(PY) bench/stylecore_bench.py
	$(PY) bench/metrics_bench.py
	$(PY) bench/report_bench.py

# 200 simulated participants (40-trial sessions, 3 s per trial, images fetched like a browser) for
# 60 s against nginx + gunicorn + PostgreSQL + Redis on loopback (database
# stylestudy_load, created and dropped), then the DB audit. nginx: Debian's.
LOAD_ARGS ?= --participants 200 --duration 60 --think 3 --trials 40 --nginx
load: $(STAMP) messages
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
	$(PY) bench/load_test.py $(LOAD_ARGS) --pg-url $(dir $(PG_URL))postgres --redis-url $(dir $(REDIS_URL))9

# Fault tests (kill -9 a worker; crash-restart PostgreSQL; stop Redis) and the
# fuzzing/security suite, on their own.
faults: $(STAMP)
	$(PY) -m pytest -m integration tests/integration/test_faults.py tests/integration/test_service_faults.py

hardening: $(STAMP)
	$(PY) -m pytest tests/hardening

clean:
	rm -rf data .pytest_cache
