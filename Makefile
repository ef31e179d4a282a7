# authsocket: the two commands a newcomer needs are `make run` and `make test`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# authsocket.serve (daphne + graceful SIGTERM) sets daphne's WebSocket size
# limits from AUTHSOCKET_MAX_MESSAGE_BYTES (docs/deploy.md §5.3).

.PHONY: install install-dev run run-example test test-fast test-compat lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The Python client (clients/python) is installed editable: the README's
# example and the tests import it.
CLIENT := clients/python

$(VENV)/.installed: requirements.txt $(CLIENT)/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet -e $(CLIENT)
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(CLIENT)/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet -e $(CLIENT)
	touch $@ $(VENV)/.installed

## install: create .venv with the runtime dependencies
install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

## run: migrate, load the demo users and rooms, serve on daphne (debug mode)
run: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(BIN)/python manage.py migrate --noinput
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(BIN)/python manage.py demo_data
	@echo ""
	@echo "  authsocket demo: http://$(HOST):$(PORT)/   (admin: http://$(HOST):$(PORT)/admin/)"
	@echo "  logins: alice, bob, carol, admin — password: $${DEMO_PASSWORD:-authsocket-demo}"
	@echo ""
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} exec $(BIN)/python -m authsocket.serve \
		-b $(HOST) -p $(PORT) authsocket.asgi:application

## run-example: the shared-document example (examples/, docs/extending.md) on daphne
# Its own settings module and database file (examples/db.sqlite3): the
# product's settings, routing and database stay as they are.
EXAMPLE_ENV = DJANGO_SETTINGS_MODULE=examples.settings DJANGO_DEBUG=$${DJANGO_DEBUG:-1}
run-example: install
	$(EXAMPLE_ENV) $(BIN)/python manage.py migrate --noinput
	$(EXAMPLE_ENV) $(BIN)/python manage.py demo_data
	$(EXAMPLE_ENV) $(BIN)/python manage.py demo_document
	@echo ""
	@echo "  shared-document example: ws://$(HOST):$(PORT)/ws/ (stream doc:1),"
	@echo "  ws://$(HOST):$(PORT)/ws/docs/1/cursors/ — try it: docs/extending.md"
	@echo "  logins: alice, bob, carol, admin — password: $${DEMO_PASSWORD:-authsocket-demo}"
	@echo ""
	$(EXAMPLE_ENV) exec $(BIN)/python -m authsocket.serve \
		-b $(HOST) -p $(PORT) examples.asgi:application

## lint: ruff, formatting, the client's types, migrations in sync, deploy checks
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# The Python client ships py.typed: its annotations must hold.
	$(BIN)/mypy $(CLIENT)/authsocket_client
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	$(EXAMPLE_ENV) $(BIN)/python manage.py makemigrations --check --dry-run shareddoc
	DJANGO_DEBUG=0 DJANGO_SECRET_KEY=lint-only-$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n') \
		AUTHSOCKET_JWT_SECRET=lint-only-jwt-secret-0123456789-0123456789 \
		DJANGO_HSTS_SECONDS=31536000 DJANGO_SECURE_SSL_REDIRECT=1 \
		DJANGO_HSTS_INCLUDE_SUBDOMAINS=1 DJANGO_HSTS_PRELOAD=1 \
		$(BIN)/python manage.py check --deploy --fail-level WARNING

## test: install what tests need, lint, run every test
test: lint
	$(BIN)/python -m pytest

test-fast: install-dev
	$(BIN)/python -m pytest -m "not slow and not browser"

## test-compat: the suite on Python 3.13 + Django 6 in .venv-compat (CI runs it)
# pyenv's shim answers `command -v python3.13` even when it cannot run it, so
# look for a real interpreter first.
COMPAT_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) \
	$(shell command -v python3.13 2>/dev/null))
COMPAT_VENV := .venv-compat

$(COMPAT_VENV)/.installed: requirements.txt requirements-dev.txt $(CLIENT)/pyproject.toml
	@test -n "$(COMPAT_PYTHON)" || { echo "test-compat needs Python 3.13: set COMPAT_PYTHON=/path/to/python3.13" >&2; exit 1; }
	$(COMPAT_PYTHON) -m venv $(COMPAT_VENV)
	@# requirements.txt pins the Django 5.2 LTS line: swap in Django 6 only.
	sed -e '/^Django[<>=~]/d' requirements.txt > $(COMPAT_VENV)/runtime.txt
	echo 'Django>=6.0,<7' >> $(COMPAT_VENV)/runtime.txt
	sed -e 's#^-r requirements.txt#-r runtime.txt#' requirements-dev.txt > $(COMPAT_VENV)/dev.txt
	$(COMPAT_VENV)/bin/pip install --quiet -r $(COMPAT_VENV)/dev.txt
	$(COMPAT_VENV)/bin/pip install --quiet -e $(CLIENT)
	touch $@

test-compat: $(COMPAT_VENV)/.installed
	$(COMPAT_VENV)/bin/python -c 'import sys, django; print("compat:", sys.version.split()[0], "Django", django.__version__)'
	$(COMPAT_VENV)/bin/python -m pytest -m "not slow and not browser"

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(COMPAT_VENV) staticfiles .pytest_cache .ruff_cache .mypy_cache

## bench / bench-quick: authsocket vs no-auth vs the common middleware (bench/README.md)
include bench/Makefile.inc
