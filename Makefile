# `make run` and `make test` both build on `make setup`, which is idempotent: the
# venv is rebuilt only when a requirements file changes (stamp file), and the
# embedded models are prepared once.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEPS := $(VENV)/.deps
STAMP := $(VENV)/.installed
PREPARED := $(VENV)/.prepared

.PHONY: setup run test test-fast lint bench browser clean

setup: $(PREPARED)

# llama.cpp compiles from source on the first set-up of a machine (see requirements-llamacpp.txt);
# if that fails the app still runs, on the transformers engine, and says so. -march=native
# would switch on ggml's AMX kernels on a Xeon that has AMX, and they die of SIGILL on the first
# prompt (tile instructions in worker threads): build without them.
# (Only where the compiler knows the flags: x86-64 with gcc >= 11 or clang >= 12.)
AMX_OFF := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
ifeq ($(shell echo 'int x;' | $(CC) $(AMX_OFF) -x c -c -o /dev/null - 2>/dev/null && echo ok),ok)
NO_AMX := "-DCMAKE_C_FLAGS=$(AMX_OFF)" "-DCMAKE_CXX_FLAGS=$(AMX_OFF)"
endif
LLAMACPP_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF $(NO_AMX)

# The Python packages (wheels only: nothing compiles), enough for `make lint`.
$(DEPS): requirements.txt requirements-offline.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-offline.txt
	touch $@

$(STAMP): $(DEPS) requirements-llamacpp.txt
	@echo "llama.cpp: installing (the first set-up of a machine compiles it: ~15 min on 2 cores; then cached)"
	@CMAKE_ARGS='$(LLAMACPP_CMAKE_ARGS)' $(BIN)/pip install --quiet -r requirements-llamacpp.txt \
	  || echo "!!! llama.cpp could not be built: text runs on the slower transformers engine, its tests are SKIPPED !!!"
	touch $@

$(PREPARED): $(STAMP)
	$(BIN)/python -m aigc_demo prepare
	touch $@

run: setup
	$(BIN)/python app.py

# The real-browser tests need Debian's Chromium; install it when it is missing (needs root
# or sudo). If that is impossible the browser tests are skipped, and pytest says so loudly.
CHROMIUM_PKGS := chromium fonts-noto-cjk fonts-noto-color-emoji
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ($$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(CHROMIUM_PKGS)) >/dev/null \
	  || echo "!!! Could not install Chromium: the real-browser tests will be SKIPPED !!!"; }

test: setup browser
	$(BIN)/python -m pytest

# The inner loop (~30 s on 2 cores): no browser, no app server, no real-model or crash tests;
# `make test` runs everything.
FAST := not e2e and not integration and not reliability and not slow
test-fast: setup
	$(BIN)/python -m pytest -q -m "$(FAST)"

# The same checks as .pre-commit-config.yaml (rules and settings in pyproject.toml; versions
# pinned in requirements-dev.txt). CI runs them before the tests.
lint: $(DEPS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Speed, memory and quality benchmarks; each script appends a dated table to bench/RESULTS.md.
bench: setup
	$(BIN)/python bench/text_engines.py
	$(BIN)/python bench/text_precision.py
	$(BIN)/python bench/text_stream.py --runs 5
	$(BIN)/python bench/components.py
	$(BIN)/python bench/serve.py --cold
	$(BIN)/python bench/support_eval.py
	$(BIN)/python bench/support_bm25.py
	$(BIN)/python bench/feedback_store.py --kills 50
	$(BIN)/python bench/hostile.py
	$(BIN)/python bench/arena.py
	$(BIN)/python bench/handoff_latency.py

clean:
	rm -rf $(VENV) .pytest_cache
