# omniclinica: `make run` starts the whole clinic, `make test` runs every test.
# Two runtimes: the platform (.venv, Python >= 3.12) and the sealed assistant (.venv-rasa,
# Rasa 3.6 on Python 3.10); each is built from its own lock and rebuilt only when it changes.
SHELL := /bin/bash
.DEFAULT_GOAL := run

VENV := .venv
RASA_VENV := .venv-rasa
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv

export RASA_TELEMETRY_ENABLED := false
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export TF_CPP_MIN_LOG_LEVEL := 2

# Production mode's replica counts: `make production WEB=3 ASSISTANT=2 WORKERS=2 ACTIONS=1`.
WEB ?= 2
ASSISTANT ?= 2
WORKERS ?= 2
ACTIONS ?= 1

.PHONY: run demo production admin test install train migrate lint lock clean

install: $(VENV)/.installed-lock $(RASA_VENV)/.installed-lock node_modules/.installed-lock

$(VENV)/.installed-lock: requirements.lock scripts/install-env.sh
	scripts/install-env.sh platform $(VENV) requirements.lock
	touch $@

$(RASA_VENV)/.installed-lock: requirements-rasa.lock scripts/install-env.sh | $(VENV)/.installed-lock
	scripts/install-env.sh assistant $(RASA_VENV) requirements-rasa.lock
	touch $@

node_modules/.installed-lock: package-lock.json scripts/install-web-assets.sh
	scripts/install-web-assets.sh
	touch $@

train: install
	scripts/train-if-changed.sh

migrate: install
	$(PY) -m processes.migrate

run: install train
	$(PY) scripts/start.py

# `make run` with the demo clinic seeded into a configured DATABASE_URL too (never by default).
demo: install train
	SEED_DEMO=true $(PY) scripts/start.py

# The replicated topology on this machine: PostgreSQL and Redis required, nginx in front.
production: install train
	@scripts/ensure-nginx.sh
	$(PY) scripts/production.py --web $(WEB) --assistant $(ASSISTANT) --workers $(WORKERS) --actions $(ACTIONS)

# A real clinic's first admin, in DATABASE_URL: asks nome, e-mail and senha (typed twice, hidden).
admin: install
	$(PY) -m processes.create_admin

test: lint train
	@scripts/ensure-chromium.sh
	@scripts/ensure-nginx.sh
	$(PY) -m pytest

# Style, the import contracts (layers, no cycles, Rasa sealed) and the types, on every run.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# Re-resolve each runtime alone: the platform on current releases, the assistant on Rasa's pins.
lock: install
	$(UV) pip compile requirements.in --output-file requirements.lock --python-version 3.12 --quiet
	$(UV) pip compile requirements-rasa.in --output-file requirements-rasa.lock --python-version 3.10 --quiet

clean:
	rm -rf $(VENV) $(RASA_VENV) node_modules var/rasa
