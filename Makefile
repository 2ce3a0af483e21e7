# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the pinned stack in the order that keeps torch the CPU build
# (docs/install.md explains why the order matters).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fpgarec-installed
# pip on this kind of machine warns about every configured-but-absent local index folder.
QUIET_PIP := sed -u '/is ignored: it is neither a file nor a directory/d'

.PHONY: venv demo demo-quick test test-fast lint clean

venv: $(STAMP)

$(STAMP): requirements/torch.txt requirements/stack.txt requirements/nodeps.txt requirements/hwsim.txt requirements/serve.txt pyproject.toml
	@echo "== creating $(VENV) (about 1-2 minutes on a fresh machine)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements/torch.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q -r requirements/stack.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q --no-deps -r requirements/nodeps.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q -r requirements/hwsim.txt -r requirements/serve.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e . 2>&1 | $(QUIET_PIP)
	$(BIN)/python -c "import torch, brevitas, finn, qonnx; assert not torch.version.cuda, 'torch must be the CPU build'"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fpgarec demo

demo-quick: $(STAMP)
	$(BIN)/fpgarec demo --quick

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check sw tests

clean:
	rm -rf build
