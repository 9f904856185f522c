# The two commands of the quick start: `make demo` and `make test`. Each sets itself up on a
# fresh machine: a virtual environment in .venv with the project installed into it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch that lies on the development machines' disk (PIP_FIND_LINKS); on a
# GPU machine set TORCH_SPEC="torch" (or a CUDA wheel) to get a CUDA build.
TORCH_SPEC ?= torch==2.13.0
PIP_FLAGS  := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: setup demo test test-fast debs clean-workspace

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(PIP_FLAGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q $(PIP_FLAGS) -e ".[model,dev]"
	touch $@

# The whole pipeline on the built-in corpus with the demo profile.
demo: setup
	$(BIN)/t2v run --profile demo

# Debian's chromium and postgresql-15, for the gallery's real-browser test and the dashboard
# on PostgreSQL.
debs:
	bash scripts/install_test_debs.sh

test: setup debs
	$(BIN)/python -m pytest

# Everything but the slow and server tests, for a quick local loop.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not server"

clean-workspace:
	rm -rf workspace
