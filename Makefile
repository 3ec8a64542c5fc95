# circuitdb: `make demo` runs the main job end to end on the embedded store; `make test` runs the tests
# (Kuzu and a real Neo4j 5.26 started from Maven Central jars). Both create .venv and install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO := demo

.PHONY: demo test lint bench clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,discovery]'
	rm -f $(VENV)/.installed-* && touch $@

# Graphviz's `dot` renders PNG/SVG (DOT text works without it); installed from Debian when missing and root.
system-deps:
	@command -v dot >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) || \
		echo "note: Graphviz 'dot' not found; PNG/SVG export needs it (DOT output works without)"; }

demo: $(STAMP) system-deps
	bash examples/demo.sh $(DEMO)

lint: $(STAMP)
	$(BIN)/ruff check circuitdb tests benchmarks

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/store.py
	$(BIN)/python benchmarks/discovery.py
	$(BIN)/python benchmarks/features.py

clean:
	rm -rf $(VENV) $(DEMO) .cache .pytest_cache .ruff_cache
