# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-fast lint superuser chromium

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

# The browser tests drive the system's Chromium; installed here when missing.
test: install lint chromium
	$(PY) -m pytest

chromium:
	@scripts/install-chromium.sh

# The pure and in-process tests only: no server processes, Redis or browser.
test-fast: install
	$(PY) -m pytest -m "not server and not redis and not browser"

superuser: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createsuperuser
