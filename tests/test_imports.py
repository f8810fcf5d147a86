"""The library's import graph: no cycle, every module in a layer, imports pointing down only,
and a planning layer that loads without torch or pandas (docs/architecture.md draws it)."""

import ast
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

PACKAGE = ROOT / "realfake"

# Lower layers first. A module imports its own layer or lower-ranked ones; layers of one rank
# (planning and runtime; generation and training) never import each other. Place new modules here.
LAYERS = {
    "foundation": {"atomic", "digests", "seeds", "splits", "devices"},
    "planning": {"config", "plan", "costs", "slurm_limits"},
    "runtime": {"models", "checkpoints", "budget", "distributed", "jobs", "records", "trackers"},
    "data": {"data", "sources", "attributes", "ood", "shards", "image_pipeline"},
    "generation": {"diffusion", "conditioning", "lora", "synthesis", "guidance", "captions", "tiny_models",
                   "pretrain"},
    "training": {"classifier"},
    "evaluation": {"gap", "tables", "privacy", "copies", "grids", "claims", "lora_validation"},
    "entry": {"preflight", "smoke"},
}
RANK = {"foundation": 0, "planning": 1, "runtime": 1, "data": 2, "generation": 3, "training": 3,
        "evaluation": 4, "entry": 5}
# planning runs where the stages' dependencies are not installed (a login node, realfake-costs)
PLANNING_MAY_IMPORT = LAYERS["planning"] | {"seeds", "splits"}


def module_name(path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"


def realfake_imports(source: str) -> set[str]:
    """The realfake modules a file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.removeprefix("realfake.") for a in node.names if a.name.startswith("realfake.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "realfake":  # from realfake import plan
                found |= {a.name for a in node.names}
            elif node.module.startswith("realfake."):
                found.add(node.module.removeprefix("realfake."))
    return found


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): realfake_imports(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of(module: str) -> str | None:
    top = module.split(".")[0]
    return next((name for name, members in LAYERS.items() if top in members), None)


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"config": {"plan"}, "plan": {"privacy"}, "privacy": {"config"}}) == [
        "config", "plan", "privacy", "config"]
    assert find_cycle({"plan": {"config"}, "tables": {"config", "plan"}, "config": set()}) is None


def test_the_library_has_no_import_cycle():
    graph = import_graph()
    # submodules of a subpackage count as the package, the level the layers speak of
    packages = {}
    for module, targets in graph.items():
        packages.setdefault(module.split(".")[0], set()).update(t.split(".")[0] for t in targets)
    for package in packages:
        packages[package].discard(package)
    assert find_cycle(graph) is None and find_cycle(packages) is None, find_cycle(graph) or find_cycle(packages)


def test_every_module_has_a_layer_and_imports_point_down():
    graph = import_graph()
    unplaced = sorted(m for m in graph if m != "__init__" and layer_of(m) is None)
    assert not unplaced, f"place these modules in a layer (tests/test_imports.py LAYERS): {unplaced}"
    upward = [f"{m} ({layer_of(m)}) imports {t} ({layer_of(t)})" for m, targets in graph.items()
              if m != "__init__" for t in targets
              if layer_of(t) != layer_of(m) and RANK[layer_of(t)] >= RANK[layer_of(m)]]
    assert not upward, upward


def test_planning_imports_only_planning():
    graph = import_graph()
    leaks = {m: sorted(t for t in graph[m] if t not in PLANNING_MAY_IMPORT) for m in LAYERS["planning"]}
    assert not any(leaks.values()), leaks


@pytest.mark.parametrize("config", ["config.yaml", "paper.yaml"])
def test_planning_loads_and_plans_without_torch_pandas_or_sklearn(config):
    """Loader, planner and costs in a Python where torch, torchvision, pandas, PIL and scikit-learn
    cannot be imported: every experiment of the config is planned (its runs, their params and
    shards; the demo's digits split is counted, not drawn)."""
    script = textwrap.dedent(f"""
        import importlib.abc, sys

        class Blocked(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in ("torch", "torchvision", "pandas", "PIL", "sklearn"):
                    raise ImportError(name + " is blocked")

        sys.meta_path.insert(0, Blocked())
        from realfake import costs, plan
        from realfake.config import load_config

        config = load_config({str(ROOT / "config" / config)!r})
        runs = plan.table1_runs(config) + plan.table9_runs(config)
        for name in ("table2", "table3", "table4", "table10", "lira", "gap", "fig2"):
            if name in config["experiments"]:
                runs += getattr(plan, name + "_runs")(config)
        for r in runs:
            plan.classifier_params(config, r["dataset"], r["trainset"], r["seed"])
            plan.trainset_shards(config, r["dataset"], r["trainset"])
        print(len(runs), costs.__name__, sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "pandas")))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    count, _, loaded = done.stdout.split(" ", 2)
    assert int(count) > 0 and loaded.strip() == "[]"
