# Set-up and the two entry points the README names. Everything installs into .venv here.
VENV ?= .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake

.PHONY: install lock demo claims readme-grid test test-node-failure lint bench paper-smoke
install: $(VENV)/.installed

# uv, in a venv of its own, installs and resolves the lock (tools/lock.py).
LOCK_TOOLS ?= $(VENV)/lock-tools
UV_VERSION ?= 0.13.9
UV := $(LOCK_TOOLS)/bin/uv
$(UV):
	python3 -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install -q uv==$(UV_VERSION)

# The tested environment: exactly the lock's versions, then the package itself without its
# dependencies (they are the lock), installed by uv (half of pip's time). Into an environment
# of your own: pip install . (README).
$(VENV)/.installed: requirements.lock pyproject.toml | $(UV)
	python3 -m venv $(VENV)
	$(LOCK_TOOLS)/bin/python tools/lock.py --uv $(UV) --install $(PY)
	touch $@

# requirements.lock anew from pyproject.toml's ranges and extras (uv, universal, Python 3.11; pins kept
# where the ranges allow), and envs/realfake.yaml from it (tools/lock.py). UPGRADE="--upgrade" moves
# every pin, UPGRADE="--upgrade-package torch" one; then make install and make test.
UPGRADE ?=
lock: | $(UV)
	$(LOCK_TOOLS)/bin/python tools/lock.py --uv $(UV) $(UPGRADE)

# The embedded demo, end to end to the tables, on this machine's CPUs; table1_grids: the sample
# grids of Table 1's synthetic sets and the comparison grid results/grids/table1.png (seconds).
demo: install
	$(SNAKEMAKE) --cores 2 results/table1.csv table1_grids

# The paper's claims over three seeds (results/claims.csv): the demo config with config/claims.yaml
# over it (experiments.seeds [0, 1, 2]); seed 0's runs are make demo's own.
claims: install
	$(SNAKEMAKE) --cores 2 --configfile config/config.yaml config/claims.yaml -- results/claims.csv

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

# Four pytest-xdist workers, one queue each (tests/conftest.py): the real-SLURM tests, the end-to-end
# workflow tests, the models' and privacy analysis' training tests, the rest.
# The node-failure test waits for SLURM to notice a dead node and requeue (10 min): run on its own.
test: install
	$(PY) -m pytest -q -rs --durations=40 -n 4 -m "not node_failure and not container" tests

test-node-failure: install
	$(PY) -m pytest -q -rs -s -m node_failure tests/test_slurm_two_nodes.py

lint: install
	$(SNAKEMAKE) --lint
	$(VENV)/bin/snakefmt --check Snakefile rules
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/demo_stages.py

# The workflow and its locked environment in an OCI image (Containerfile), saved as an archive that
# apptainer turns into a .sif on a cluster (docs/slurm.md). CONTAINER_BASE empty: the Containerfile's
# default (python:3.11-slim). Where podman's defaults fail (this project's development machines):
# PODMAN="podman --runtime runc" and CONTAINERS_CONF (docs/slurm.md).
.PHONY: container
PODMAN ?= podman
CONTAINER_IMAGE ?= localhost/realfake:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
CONTAINER_ARCHIVE ?= realfake-image.tar
CONTAINER_LOCK ?= requirements.lock
CONTAINER_BASE ?=
# pip in the build reads what this machine's pip reads (certificates, pip.conf, the user's pip.conf,
# local wheel folders), read-only; paths this machine does not have are left out
CONTAINER_PIP_PATHS ?= /etc/ssl/certs /etc/pip.conf /etc/xdg/pip /opt/wheels /opt/pypi /opt/pypi-more
CONTAINER_PIP_MOUNTS ?= $(foreach p,$(wildcard $(CONTAINER_PIP_PATHS)),-v $(p):$(p):ro) \
	$(if $(wildcard $(HOME)/.config/pip),-v $(HOME)/.config/pip:/root/.config/pip:ro)
container:
	$(PODMAN) build --network host $(CONTAINER_PIP_MOUNTS) \
		$(if $(CONTAINER_BASE),--build-arg BASE=$(CONTAINER_BASE)) --build-arg LOCK=$(CONTAINER_LOCK) \
		-t $(CONTAINER_IMAGE) -f Containerfile .
	rm -f $(CONTAINER_ARCHIVE)
	$(PODMAN) save -o $(CONTAINER_ARCHIVE) $(CONTAINER_IMAGE)
