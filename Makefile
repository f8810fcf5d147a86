# Set-up and the two entry points the README names. Everything installs into .venv here.
VENV ?= .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake

.PHONY: install demo readme-grid test test-node-failure lint bench paper-smoke
install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# The embedded demo, end to end to the tables, on this machine's CPUs; table1_grids: the sample
# grids of Table 1's synthetic sets and the comparison grid results/grids/table1.png (seconds).
demo: install
	$(SNAKEMAKE) --cores 2 results/table1.csv table1_grids

# The README's picture: the demo's comparison grid, copied to docs/images with the date and commit
# it came from written into the README's caption line.
README_GRID := docs/images/demo_comparison.png
readme-grid: install
	$(SNAKEMAKE) --cores 2 results/grids/table1.png
	cp results/grids/table1.png $(README_GRID)
	sed -i "s|^<sub>The demo's comparison grid.*|<sub>The demo's comparison grid (\`make readme-grid\`: \`results/grids/table1.png\`), \
	made $$(date -u +%F) from commit $$(git describe --always --dirty).</sub>|" README.md

# config/paper.yaml itself, every rule once, on full-size random models and real-layout data
# sets (python -m realfake.smoke): paths and counts overlaid, nothing downloaded. SMOKE: its folder.
SMOKE ?= smoke
SMOKE_TARGETS ?= $(shell $(PY) -c "from realfake.smoke.overlay import PAPER_TARGETS; print(*PAPER_TARGETS)")
paper-smoke: install
	$(PY) -m realfake.smoke prepare $(SMOKE)
	HF_HUB_OFFLINE=1 $(SNAKEMAKE) --cores 2 --directory $(SMOKE)/run --rerun-incomplete $(SMOKE_TARGETS) \
		--configfile $(CURDIR)/config/paper.yaml $(abspath $(SMOKE))/overlay.yaml
	$(PY) -m realfake.smoke report $(SMOKE)/run

# Three pytest-xdist workers, one queue each (tests/conftest.py): the real-SLURM tests, the end-to-end
# workflow tests, the rest.
# The node-failure test waits for SLURM to notice a dead node and requeue (10 min): run on its own.
test: install
	$(PY) -m pytest -q -rs --durations=15 -n 3 -m "not node_failure" tests

test-node-failure: install
	$(PY) -m pytest -q -rs -s -m node_failure tests/test_slurm_two_nodes.py

lint: install
	$(SNAKEMAKE) --lint
	$(VENV)/bin/snakefmt --check Snakefile rules
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/demo_stages.py
