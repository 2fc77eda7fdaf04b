# Two entry points for a fresh machine (Python >= 3.10 with venv):
#   make demo   -- create .venv, install skcharclf, run the demo on built-in data
#   make test   -- create .venv, install skcharclf with test extras, run lint and the test suite
# `make docs` builds the Sphinx documentation (warnings are errors).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PYTEST_ARGS ?=

.PHONY: demo test docs lint clean install-demo install-test install-docs install-browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install-demo: $(BIN)/python
	$(PIP) install --quiet -e ".[plot]"

install-test: $(BIN)/python
	$(PIP) install --quiet -e ".[test]"

install-docs: $(BIN)/python
	$(PIP) install --quiet -e ".[docs,test]"

demo: install-demo
	$(BIN)/skcharclf demo

lint: install-test
	$(BIN)/ruff check skcharclf tests examples benchmarks docs/conf.py

# The HTML-report test renders the report in headless Chromium (Debian's package). As root
# with apt-get, it is installed here; otherwise install it yourself (or set
# SKCHARCLF_SKIP_BROWSER=1 to skip that one test).
install-browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium is not installed; the report rendering test needs it"; fi; }

test: install-test install-browser lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

docs: install-docs
	$(MAKE) -C docs html SPHINXBUILD=$(abspath $(BIN))/sphinx-build

clean:
	rm -rf build dist *.egg-info docs/_build docs/auto_examples docs/generated .pytest_cache
