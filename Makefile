# Two entry points: `make demo` and `make test`; both build .venv from scratch if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit mutate proto bench clean lock audit-deps pin-base-image

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# LOCKED=1 (CI) installs the exact versions and hashes of requirements/dev.lock, then the
# project itself without dependencies; otherwise the newest versions pyproject.toml allows.
$(STAMP): pyproject.toml | $(BIN)/python
ifeq ($(LOCKED),1)
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
else
	$(BIN)/pip install --quiet -e '.[dev]'
endif
	touch $(STAMP)

# Exact versions with their hashes, for every platform: the image installs image.lock,
# CI dev.lock (LOCKED=1). Rerun after changing the dependencies in pyproject.toml.
LOCK_FLAGS := --generate-hashes --universal --python-version 3.11 \
	--index-url https://pypi.org/simple --custom-compile-command "make lock" --quiet
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements/image.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements/dev.lock

# Known vulnerabilities in the locked versions, from PyPI's advisory data (pip-audit's
# default service; `PIP_AUDIT_ARGS="-s osv"` asks OSV instead). Needs that service.
PIP_AUDIT := pip-audit==2.10.1
audit-deps: $(STAMP)
	$(BIN)/uv tool run --index-url https://pypi.org/simple --from '$(PIP_AUDIT)' pip-audit \
		--disable-pip --require-hashes --progress-spinner off $(PIP_AUDIT_ARGS) \
		-r requirements/image.lock -r requirements/dev.lock

# Write the registry's current digest of the base image's tag into the Dockerfile.
BASE_IMAGE := python:3.11-slim
pin-base-image:
	digest=$$(docker buildx imagetools inspect $(BASE_IMAGE) --format '{{json .Manifest.Digest}}' | tr -d '"') \
	&& case "$$digest" in sha256:*) ;; *) echo "error: no digest for $(BASE_IMAGE)" >&2; exit 1;; esac \
	&& sed -i "s|^ARG PYTHON_IMAGE=.*|ARG PYTHON_IMAGE=$(BASE_IMAGE)@$$digest|" Dockerfile \
	&& grep '^ARG PYTHON_IMAGE=' Dockerfile

demo: $(STAMP)
	$(BIN)/gateway demo $(DEMO_ARGS)

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy gateway nodes benchmarks

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
