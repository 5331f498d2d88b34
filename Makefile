# The two commands a newcomer needs: `make demo` and `make test`.
# Both bootstrap a local virtualenv from nothing but python3 and make, and reinstall only when a
# pyproject.toml changed since the last install. `make dist` builds the wheels of rpkit and of the
# Scalekit plugin into dist/ (DIST=folder for another place).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.rpkit-installed
DIST   ?= dist
PROJECT_FILES := pyproject.toml plugins/scalekit/pyproject.toml

.PHONY: demo test lint typecheck docs pytest install sysdeps dist clean

demo: $(STAMP)
	$(BIN)/python examples/demo/run.py

test: lint typecheck docs pytest

install: $(STAMP)

$(STAMP): $(PROJECT_FILES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-e '.[dev]' -e 'plugins/scalekit[dev]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy src plugins/scalekit/src

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/site

pytest: $(STAMP) sysdeps
	$(BIN)/pytest -q

sysdeps:
	bash scripts/system-deps.sh

dist: $(STAMP)
	rm -rf $(DIST)
	$(BIN)/python -m pip wheel --quiet --disable-pip-version-check --no-deps \
		--wheel-dir $(DIST) . plugins/scalekit

clean:
	rm -rf $(VENV) site dist .mypy_cache .ruff_cache .pytest_cache
