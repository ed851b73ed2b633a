# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements
BENCH_STAMP := $(VENV)/.installed-bench-requirements
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-bench run test test-fast lint superuser chromium redis-server gettext messages nginx bench fuzz soak faults slow-readers

install: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

# The benchmark's own dependencies (the reference designs, process metrics).
install-bench: $(BENCH_STAMP)

$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	@touch $(BENCH_STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py runserver $(HOST):$(PORT)

# ruff, and the layer contract of pyproject.toml (import-linter): no import
# circle, arrows pointing down only.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

# The browser tests drive the system's Chromium, the Redis tests start their
# own redis-server, the message-file tests run makemessages (GNU gettext)
# and the deploy test its own nginx, all installed here when missing; the
# suite includes a smoke run of the benchmark harness, hence install-bench.
test: install install-bench lint chromium redis-server gettext nginx
	$(PY) -m pytest

chromium:
	@scripts/install-chromium.sh

redis-server:
	@scripts/ensure-redis-server.sh

gettext:
	@scripts/ensure-gettext.sh

# After changing a sentence: update the message files, translate what is new
# or fuzzy in locale/*/LC_MESSAGES/django.po, then run this again to compile
# the .mo files (committed, so that `make run` needs no gettext).
messages: install gettext
	$(PY) manage.py makemessages --all --add-location=file --no-obsolete --ignore=chat/tests
	$(PY) manage.py compilemessages --ignore=$(VENV)

nginx:
	@scripts/ensure-nginx.sh

# Side by side with the reference designs (docs/performance.md); a few
# minutes. BENCH_ARGS=--quick for a smoke run, --redis for the Redis column.
bench: install-bench
	$(PY) -m bench.run $(BENCH_ARGS)

# The live fuzzer (docs/reliability.md): 10,000 generated and mutated frames
# against a real server process, with two observers in the room; under a
# minute. FUZZ_ARGS="--server daphne" for Daphne, --frames N, --seed N.
fuzz: install
	$(PY) -m chat.testing.fuzz $(FUZZ_ARGS)

# Reliability (docs/reliability.md), not run by `make test`:
# 1,000 members on two uvicorn processes and one Redis for 10 minutes (about
# 12 in all); SOAK_ARGS="--minutes 2 --members 200" for a shorter one.
soak: install-bench redis-server
	$(PY) -m bench.soak $(SOAK_ARGS)

# kill -9, SIGTERM and a Redis restart under steady traffic; about 2 minutes.
faults: install-bench redis-server
	$(PY) -m bench.faults $(FAULTS_ARGS)

# A member that stops reading, and one on a slow link, in a room of 500:
# the others' p99 beside the same room without them, and the memory a
# stalled member holds until it is let go; about 3 minutes.
slow-readers: install-bench
	$(PY) -m bench.slow_readers $(SLOW_ARGS)

# The pure and in-process tests only: no server processes, Redis or browser.
test-fast: install gettext
	$(PY) -m pytest -m "not server and not redis and not browser and not deploy"

superuser: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createsuperuser
