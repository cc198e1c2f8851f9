# Two entry points: `make demo` and `make test`; both build .venv from scratch if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit mutate proto bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gateway demo $(DEMO_ARGS)

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy gateway nodes

unit: $(STAMP)
	$(BIN)/pytest -q

# Remove each security check in turn (tests/mutation/mutants.toml) and show that its
# tests fail; a scratch copy of the tree is mutated, never the working tree.
mutate: $(STAMP)
	$(BIN)/python -m tests.mutation

# OpenMined PSI, the benchmarks' reference peer, pins protobuf 6 although it runs on
# protobuf 7; installed without its pins so that gRPC keeps the protobuf it needs.
$(VENV)/.bench: $(STAMP)
	$(BIN)/pip install --quiet --no-deps 'openmined-psi==2.0.6'
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python -m benchmarks.run_all

proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. --pyi_out=. proto/gateway/v1/*.proto

clean:
	rm -rf $(VENV) var build dist *.egg-info
