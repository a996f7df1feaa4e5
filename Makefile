# Two commands from nothing: `make demo` renders the bundled scene into out/, `make test` checks the import
# contracts (pyproject.toml) and runs the tests.
# Each creates the virtual environment (.venv) and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The dev/CI install pins the CPU torch wheel (constraints.txt); pyproject accepts a range.
PIP_INSTALL := $(BIN)/python -m pip install -q -c constraints.txt

.PHONY: demo test bench gpu-wheels gpu-check clean

$(BIN)/splatfilm: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[dev]'
	@touch $@

demo: $(BIN)/splatfilm
	$(BIN)/splatfilm demo -o out/demo

test: $(BIN)/splatfilm
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q

bench: $(BIN)/splatfilm
	$(BIN)/python benchmarks/render.py

# The GPU check (scripts/gpu_check.py): wheels and the demo's physics prepared here, then run
# on a bare CUDA machine; `make gpu-check ARGS=--dry-run` rehearses it on the CPU.
gpu-wheels: $(BIN)/splatfilm
	bash scripts/gpu_wheels.sh

gpu-check:
	bash scripts/gpu_check.sh $(ARGS)

clean:
	rm -rf $(VENV) out
