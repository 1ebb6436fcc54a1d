# Gatewatch developer entry points. Every target sets itself up: a fresh machine needs
# only python3 (>= 3.11). Dependencies are pinned in constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= .demo

.PHONY: help venv demo test check lint typecheck pytest browser bench evaluate clean lock

help:
	@echo "make demo   simulated attacks -> detectors -> chDB -> alerts -> dashboard on 127.0.0.1:8080"
	@echo "make test   create the venv, install pinned dependencies, run ruff, mypy and the pytest suite"
	@echo "make bench  run the benchmarks under bench/ and print figures"
	@echo "make evaluate  score detection on labelled simulated attacks (../shared/eval when present)"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m gatewatch.demo --dir $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) browser
	$(BIN)/python -m pytest

check: lint typecheck pytest

test: check

# Debian packages the tests use: headless Chromium and its driver (the dashboard's
# browser tests) and the OWASP Core Rule Set (the payload stage). Installed when
# missing and running as root; else those tests skip and say why.
browser:
	@{ command -v chromium && command -v chromedriver && test -d /usr/share/modsecurity-crs/rules; } >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver modsecurity-crs; \
	  else echo "chromium, chromedriver or modsecurity-crs missing (not root: not installing); those tests will skip"; fi; }

bench: $(STAMP)
	$(BIN)/python -m bench

evaluate: $(STAMP)
	$(BIN)/python -m bench.evaluate

# Re-resolve the pins from pyproject.toml's ranges (run deliberately, review the diff).
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet -e '.[dev]'
	.lockenv/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
	rm -rf .lockenv

clean:
	rm -rf $(VENV) $(DEMO_DIR) .mypy_cache .ruff_cache .pytest_cache
