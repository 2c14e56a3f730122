# omniclinica: `make run` starts the whole clinic, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := run

VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
INSTALLED := $(VENV)/.installed-lock

export RASA_TELEMETRY_ENABLED := false
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: run test install train migrate lint lock clean

install: $(INSTALLED)

# Rebuilt only when the lock changes. The .pth file puts the repository on the venv's path
# so Rasa finds our connectors (bot.channels.*) and actions (bot.actions) by module name.
$(INSTALLED): requirements.lock
	@python310=$$(scripts/find-python310.sh) && { [[ -x $(PY) ]] || $$python310 -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	echo "$(CURDIR)" > $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/omniclinica.pth
	touch $@

train: install
	scripts/train-if-changed.sh

migrate: install
	$(PY) -m models.migrate

run: install train
	$(PY) scripts/start.py

test: install train
	@scripts/ensure-chromium.sh
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Re-resolve every dependency together (Rasa's pins make piecemeal upgrades fragile).
lock: install
	$(UV) pip compile requirements.in --output-file requirements.lock --python-version 3.10 --quiet

clean:
	rm -rf $(VENV) var/rasa
