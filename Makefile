# circuitdb: `make demo` runs the main job end to end on the embedded store; `make test` runs the tests
# (the embedded store and a real Neo4j 5.26 started from Maven Central jars). Both create .venv and install what they need.
# `make test-tl4` runs the discovery tests that apply under TransformerLens 4 (the bridge) in .venv-tl4.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO := demo
VENV_TL4 := .venv-tl4
STAMP_TL4 := $(VENV_TL4)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test test-tl4 lint bench clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,discovery,ray,kuzu]'
	rm -f $(VENV)/.installed-* && touch $@

# torch and its CUDA libraries (5 GB) are linked from .venv, not installed twice: the same pinned version serves both
$(STAMP_TL4): pyproject.toml $(STAMP)
	test -x $(VENV_TL4)/bin/python || $(PYTHON) -m venv $(VENV_TL4)
	src=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
	dst=$$($(VENV_TL4)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
	for p in "$$src"/torch "$$src"/torchgen "$$src"/functorch "$$src"/triton "$$src"/nvidia "$$src"/cuda \
		"$$src"/torch-*.dist-info "$$src"/triton-*.dist-info "$$src"/nvidia_*.dist-info "$$src"/cuda_*.dist-info; do \
		if [ -e "$$p" ]; then ln -sfn "$$p" "$$dst/"; fi; done
	$(VENV_TL4)/bin/pip install -q --disable-pip-version-check -e '.[dev,tl4]'
	rm -f $(VENV_TL4)/.installed-* && touch $@

# Graphviz's `dot` renders PNG/SVG (DOT text works without it); Chromium and its driver run the web view's browser
# tests (tests/test_serve.py, through Selenium; nothing downloads a browser). Installed from Debian when missing and root.
system-deps:
	@command -v dot >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) || \
		echo "note: Graphviz 'dot' not found; PNG/SVG export needs it (DOT output works without)"; }
	@{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } || { [ "$$(id -u)" = 0 ] && \
		command -v apt-get >/dev/null && \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || \
		echo "note: chromium/chromedriver not found; the browser tests of \`circuitdb serve\` need them"; }

demo: $(STAMP) system-deps
	bash examples/demo.sh $(DEMO)

lint: $(STAMP)
	$(BIN)/ruff check circuitdb tests benchmarks

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest -q

test-tl4: $(STAMP_TL4)
	$(VENV_TL4)/bin/python -m pytest -q tests/test_architectures.py

bench: $(STAMP)
	$(BIN)/python benchmarks/store.py
	$(BIN)/python benchmarks/discovery.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/serve.py

clean:
	rm -rf $(VENV) $(VENV_TL4) $(DEMO) .cache .pytest_cache .ruff_cache screenshots
