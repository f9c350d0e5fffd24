# Two commands: `make demo` (set up, train the default model, print 20 names) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo check test lint format setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,onnx]'
	touch $(STAMP)

demo: $(STAMP)
	@run=runs/demo-$$(date +%Y%m%d-%H%M%S); \
	$(BIN)/makemore train --type mlp -o $$run && \
	$(BIN)/makemore sample -o $$run -n 20 --seed 0

# Three test processes at a time (pytest-xdist), each of whose trainings takes one thread: much of
# the suite waits (a child process importing torch, a server starting, the browser), so a third
# worker fills two cores' idle time (the whole suite: 318 s with two, 297 s with three, AMD EPYC).
PYTEST := OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -p no:randomly -n 3 --dist worksteal

check: $(STAMP)  # the fast tier: unit and contract tests, tiny data, no real processes (-m "not slow")
	$(PYTEST) -m "not slow"

test: $(STAMP)  # everything: the fast tier, then goldens, DDP, signals, real servers and the browser
	$(PYTEST)

lint: $(STAMP)  # what CI checks: formatting and lint (ruff, configured in pyproject.toml)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) runs
