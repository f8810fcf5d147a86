# Set-up and the two entry points the README names. Everything installs into .venv here.
VENV ?= .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake

.PHONY: install demo test lint bench
install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# The embedded demo, end to end to the tables, on this machine's CPUs.
demo: install
	$(SNAKEMAKE) --cores 2 results/table1.csv

test: install
	$(PY) -m pytest -q -rs tests

lint: install
	$(SNAKEMAKE) --lint
	$(VENV)/bin/snakefmt --check Snakefile rules
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/demo_stages.py
