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

.PHONY: demo test install lint browser messages bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Debian's Chromium drives the browser tests (no browser download); CJK fonts
# make the Chinese and Japanese screenshots legible.
browser:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for the browser tests:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

messages: $(STAMP)
	$(PY) manage.py compilemessages --ignore=.venv -v 0

demo: $(STAMP) messages
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py demo

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) browser messages lint
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

clean:
	rm -rf data .pytest_cache
