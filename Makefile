# Two entry points for a fresh machine (Python >= 3.10 with venv):
#   make demo   -- create .venv, install skcharclf, run the demo on built-in data
#   make test   -- create .venv, install skcharclf with test extras, run lint and the test suite
# `make docs` builds the Sphinx documentation (warnings are errors).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PYTEST_ARGS ?=

.PHONY: demo test docs lint bench clean install-demo install-test install-docs

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

test: install-test lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

docs: install-docs
	$(MAKE) -C docs html SPHINXBUILD=$(abspath $(BIN))/sphinx-build

clean:
	rm -rf build dist *.egg-info docs/_build docs/auto_examples docs/generated .pytest_cache
