# Two entry points for a fresh machine (see README "Quick start"):
#   make demo   install, then explain a bundled example clip with the bundled offline model
#   make test   install, then lint and run the whole test suite (what CI runs)
#   make docs   regenerate docs/cli.md from the CLI, then build the documentation site into site/
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= lmaczs-out/demo

.PHONY: install demo test test-fast test-e2e lint bench completions docs

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check \
		-c requirements/constraints.txt -e '.[test]'
	# msclap's pins would downgrade transformers/librosa/pandas: its model code is loaded without them
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps msclap==1.3.4
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/lmaczs explain lmaczs_cli/assets/examples/scene.wav --clap small \
		--labels lmaczs_cli/assets/examples/labels.txt --top-k 2 --residual --report --out $(DEMO_OUT)

lint: $(STAMP)
	$(BIN)/ruff check lmaczs_cli tests benchmarks

test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# the slow end-to-end tests only (make test and CI run them too)
test-e2e: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m slow

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

completions: $(STAMP)
	$(BIN)/python -m lmaczs_cli.cli.completions completions

docs: $(STAMP)
	$(BIN)/python -m lmaczs_cli.cli.docs docs/cli.md
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
