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

.PHONY: venv venv-pynq demo demo-quick test test-board-emu test-fast lint clean

venv: $(STAMP)

$(STAMP): requirements/torch.txt requirements/stack.txt requirements/nodeps.txt requirements/hwsim.txt requirements/serve.txt requirements/media.txt requirements/lm.txt pyproject.toml
	@echo "== creating $(VENV) (about 1-2 minutes on a fresh machine)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements/torch.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q -r requirements/stack.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q --no-deps -r requirements/nodeps.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q -r requirements/hwsim.txt -r requirements/serve.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q --no-deps -r requirements/media.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q -r requirements/lm.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e . 2>&1 | $(QUIET_PIP)
	$(BIN)/python -c "import torch, brevitas, finn, qonnx; assert not torch.version.cuda, 'torch must be the CPU build'"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fpgarec demo

# the quick run has its own folder: it never replaces the full demo's report in build/demo
demo-quick: $(STAMP)
	$(BIN)/fpgarec demo --quick --out build/demo-quick

# Board-emulation environment (tests/board_emu): the real pynq 4.0.0, which pins numpy<2.
# PYNQ images run Python 3.10: use it where pyenv has it, else python3.
PYNQ_VENV := .venv-pynq
PYNQ_STAMP := $(PYNQ_VENV)/.fpgarec-installed
PYNQ_PYTHON ?= $(or $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10.*/bin/python3.10)),$(PYTHON))

venv-pynq: $(PYNQ_STAMP)

$(PYNQ_STAMP): requirements/pynq.txt pyproject.toml
	@echo "== creating $(PYNQ_VENV) with $(PYNQ_PYTHON) (pynq 4.0.0, numpy 1.x; under a minute)"
	rm -rf $(PYNQ_VENV)
	$(PYNQ_PYTHON) -m venv $(PYNQ_VENV)
	$(PYNQ_VENV)/bin/pip install -q -r requirements/pynq.txt 2>&1 | $(QUIET_PIP) | sed -u "/DEPRECATION: .* legacy 'setup.py install'/d"
	$(PYNQ_VENV)/bin/pip install -q --no-deps --no-build-isolation -e . 2>&1 | $(QUIET_PIP)
	$(PYNQ_VENV)/bin/python -W ignore -c "import numpy, pynq, fpgarec.runtime.pynq_backend; assert numpy.__version__ < '2', numpy.__version__"
	touch $(PYNQ_STAMP)

# the board-emulation tests' attention bundle is built in the main environment (FINN), ~15 s
test-board-emu: $(STAMP) $(PYNQ_STAMP)
	$(BIN)/python tests/board_emu/build_bundles.py build/board_emu
	$(PYNQ_VENV)/bin/python -m pytest -q tests/board_emu

test: $(STAMP) $(PYNQ_STAMP)
	command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q --no-install-recommends chromium; }  # tests/unit/test_report_browser.py
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup  # two processes; tests/conftest.py groups them
	$(BIN)/python tests/board_emu/build_bundles.py build/board_emu
	$(PYNQ_VENV)/bin/python -m pytest -q tests/board_emu

# the tests that neither train on real data (slow) nor run Verilator (rtlsim); -m replaces
# pyproject's addopts -m, so vivado and board stay excluded here too
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not rtlsim and not vivado and not board"

lint: $(STAMP)
	$(BIN)/ruff check sw tests

clean:
	rm -rf build
