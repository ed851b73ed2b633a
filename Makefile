# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-fast lint superuser redis-server

install: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py runserver $(HOST):$(PORT)

lint: install
	$(VENV)/bin/ruff check .

test: install lint redis-server
	$(PY) -m pytest

# The Redis tests start their own redis-server on a free port.
redis-server:
	@scripts/ensure-redis-server.sh

# The pure and in-process tests only: no server processes, Redis or browser.
test-fast: install
	$(PY) -m pytest -m "not server and not redis and not browser"

superuser: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createsuperuser
