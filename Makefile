# Bootstraps .venv by itself on a fresh machine: torch (CPU build) first, then vidssl[dev].
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test venv lint bench clean

demo: $(STAMP)
	$(BIN)/vidssl demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[dev]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/data_throughput.py
	$(BIN)/python benchmarks/models.py --quick
	$(BIN)/python benchmarks/tubelets.py
	$(BIN)/python benchmarks/sigma.py

clean:
	rm -rf runs .pytest_cache
