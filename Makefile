# ModelHarbor — `make run` serves on the embedded default, `make test` runs the whole suite.
#
# Two installs, each with its own stamp, each done once: `make run` installs the runtime dependencies only
# (`pip install -e .`: what `pip install modelharbor` gives), `make test` adds the development extras ([dev] in
# pyproject.toml: pytest, ruff, the vendors' real clients, …) to the same .venv. `make run` after `make test`
# installs nothing; `make test` after `make run` installs just the extras. Editing pyproject.toml redoes both.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-stamp
DEV_STAMP     := $(VENV)/.dev-stamp
PIP    := $(BIN)/python -m pip install --disable-pip-version-check
HOST   ?= 127.0.0.1
PORT   ?= 8000
# pytest workers for make test: auto = one per core (TEST_WORKERS=0 runs the suite in this process, as before)
TEST_WORKERS ?= auto

.PHONY: install install-dev system-deps run test lint format bench clean

install: $(RUNTIME_STAMP) system-deps

install-dev: $(DEV_STAMP) system-deps

# bubblewrap isolates user code (docs/security.md); installed from Debian's packages when run as root.
system-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap (isolation of user code)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  else \
	    echo "warning: bubblewrap (bwrap) is not installed and cannot be installed here: user code will not be isolated (docs/security.md)"; \
	  fi; }

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ModelHarbor needs Python 3.11 or newer")'
	@echo "==> creating $(VENV) with $$($(PYTHON) --version)"
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	@echo "==> installing ModelHarbor and its runtime dependencies into $(VENV) (about 55 packages, 200 MB)"
	$(PIP) -e .
	@touch $@

# The extras alone (read from pyproject.toml), so the project itself is not rebuilt.
$(DEV_STAMP): $(RUNTIME_STAMP) pyproject.toml
	@echo "==> adding the development extras ([dev] in pyproject.toml) to $(VENV)"
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["dev"], sep="\n")' > $(VENV)/dev-requirements.txt
	$(PIP) -r $(VENV)/dev-requirements.txt
	@touch $@

run: install
	$(BIN)/modelharbor db upgrade
	$(BIN)/modelharbor serve --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports  # the layer contracts in pyproject.toml ([tool.importlinter]; docs/architecture.md, "Layers")

format: install-dev
	$(BIN)/ruff format src tests bench

# A module's tests stay on one worker (--dist loadscope), so a module-scoped server starts once; the modules marked
# slow go first (tests/conftest.py), so the longest ones do not end the run on one worker while the other idles.
test: install-dev lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

bench: install-dev
	$(BIN)/python bench/upload.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache .import_linter_cache
