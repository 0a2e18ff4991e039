# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := python3-venv python3-dev gcc pkg-config libasound2-dev libsystemd-dev \
	alsa-utils libasound2-plugins pulseaudio pulseaudio-utils espeak-ng sox shellcheck systemd

.PHONY: setup apt demo test lint bench soak arm64-check system-check clean

setup: apt $(STAMP)

apt:
	@bash tests/tools/apt-install.sh $(APT_PACKAGES)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pttd needs Python 3.11 or newer")'
	@test -x $(BIN)/python || { echo ">> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo ">> installing pttd and its test tools into $(VENV) (pyalsaaudio and systemd-python compile: ~1 min)"
	@$(BIN)/pip install --quiet --upgrade pip
	@$(BIN)/pip install --quiet --progress-bar off -e '.[test]'
	@touch $(STAMP)

demo: setup
	$(BIN)/pttd demo $(ARGS)

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m 'not slow' $(ARGS)

lint: setup
	$(BIN)/ruff check .
	shellcheck install.sh .ci/run tests/tools/*.sh

bench: setup
	$(BIN)/python -m tests.bench $(ARGS)

soak: setup
	$(BIN)/python -m pytest -q -s -m slow tests/test_soak.py $(ARGS)

arm64-check: setup
	bash tests/arm64/check.sh

# Debian 13 booted under qemu (TCG) with systemd as PID 1: install.sh and the unit for real.
system-check:
	bash tests/system/check.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis demo-reply.wav
