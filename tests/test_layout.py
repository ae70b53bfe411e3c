"""The house rules of the layout, checked from the source (docs/design.md): which package
may import which, no import circles, and light commands that stay light."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("grid", "actors", "analysis")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, top_level_only: bool = False, type_checking: bool = False) -> set[str]:
    """Every module `path` imports (all of them, or only those at module level), leaving out
    `if TYPE_CHECKING:` blocks, which never run, unless `type_checking`."""
    found: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child) and not type_checking:
                continue
            if isinstance(child, ast.Import) and (top or not top_level_only):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0 and (top or not top_level_only):
                found.add(child.module)
                found.update(f"{child.module}.{a.name}" for a in child.names)
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, inner)

    visit(ast.parse(path.read_text()), True)
    return found


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def import_graph(top_level_only: bool = False, type_checking: bool = False) -> dict[str, set[str]]:
    """Module -> the project modules it imports (`from grid.world import model` counts as grid.world.model)."""
    mods = project_modules()
    return {m: {i for i in imports(p, top_level_only, type_checking) if i in mods and i != m} for m, p in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: each strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    # Function-level imports count too: an import put inside a function to dodge a circle is still one.
    assert cycles(import_graph()) == []


def test_no_import_circles_for_the_type_checker_either():
    # A circle that only `if TYPE_CHECKING:` imports close is still one for a reader (docs/design.md).
    assert cycles(import_graph(type_checking=True)) == []


def _imports_of(package: str) -> dict[str, set[str]]:
    return {m: imports(p) for m, p in project_modules().items() if m.split(".")[0] == package}


def test_analysis_is_pure_pandas():
    banned = ("ray", "torch", "transformers", "grid", "actors")
    for mod, names in _imports_of("analysis").items():
        bad = sorted(n for n in names if n.split(".")[0] in banned)
        assert not bad, f"{mod} imports {bad}"


def test_actors_never_import_grid():
    for mod, names in _imports_of("actors").items():
        bad = sorted(n for n in names if n.split(".")[0] == "grid")
        assert not bad, f"{mod} imports {bad}"


def test_grid_world_and_data_never_climb_back_up():
    # The data and the micro-world are the ground floor of grid/: they import neither a
    # stage nor the CLI or config, only each other.
    for mod, deps in import_graph().items():
        if mod.startswith(("grid.data", "grid.world")):
            bad = sorted(d for d in deps if d.startswith("grid") and not d.startswith(("grid.data", "grid.world", "grid.cache")))
            assert not bad, f"{mod} imports {bad}"


def test_only_actors_touch_a_gpu():
    for mod, path in project_modules().items():
        if mod.split(".")[0] != "actors":
            assert "cuda" not in path.read_text(), f"{mod} mentions cuda: only actors/ touch a GPU"


HEAVY = ("torch", "transformers", "ray.data", "ray.tune", "vllm")


def loaded_by(code: str) -> list[str]:
    """The heavy modules that running `code` in a fresh interpreter imports."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_loaded_by_sees_a_heavy_import():
    assert loaded_by("import torch") == ["torch"]


def test_validate_stays_light():
    code = "from grid.cli import main\nassert main(['validate', 'configs/local.yaml']) == 0"
    assert loaded_by(code) == []


def test_launch_dry_run_stays_light():
    code = (
        "from grid.cli import build_parser\nfrom grid.launch import launch, plan\n"
        "args = build_parser().parse_args(['launch', 'configs/paper.yaml', '--dry-run'])\n"
        "assert launch(plan(args.config, args.cluster, args.resume, args.min_gpus), dry_run=True) == 0"
    )
    assert loaded_by(code) == []


def test_results_parquet_is_written_in_one_place():
    # Stages hand the results on; the pipeline writes them once, when the last stage is done.
    writes = [
        (mod, n)
        for mod, path in project_modules().items()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "to_parquet(" in line and ('"results.parquet"' in line or "paths.results" in line)  # grid/run_folder.py
    ]
    assert [mod for mod, _ in writes] == ["grid.pipeline"], writes
