# The two commands of the README. Each creates the environment when it is missing.
#   make demo   -> the main job: a short condensed-replay class-incremental run on the embedded digits
#   make test   -> lint + the test suite + the notebooks, executed (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint env clean

env: $(STAMP)

# constraints.txt pins torch to the CPU wheel; without it pip may pull several GB of CUDA wheels.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cl-nas cl

lint: $(STAMP)
	$(BIN)/ruff check cl_nas benchmarks tests notebooks

# the NAS tests start a throwaway PostgreSQL server: install its binaries when missing (apt-get)
test: lint
	scripts/ensure_postgres.sh
	$(BIN)/python -m pytest -q tests
	$(BIN)/python -m pytest -q --nbmake --nbmake-timeout=900 notebooks

clean:
	rm -rf $(VENV) runs .pytest_cache
