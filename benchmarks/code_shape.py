"""The code's shape, for before/after comparisons of a refactor (docs/performance.md has none
of these: they are structure, not speed). Reads the source with `ast`; imports nothing of the project but tests/test_layout.py's import graph.

    python benchmarks/code_shape.py

Prints: modules and lines per package; imports deferred into functions; cycles in the import
graph of the project's modules (TYPE_CHECKING imports counted: a cycle there is still a knot
for a reader); the modules that spell a run-folder file name as a literal. It measures the
checkout it sits in.
"""
from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_layout import cycles, import_graph  # noqa: E402  (the layout test's own import graph)

PACKAGES = ("actors", "analysis", "grid")
# Files of the run folder (grid/run.py): a literal of one of these outside the module that
# owns the layout is a second owner.
RUN_FILE = re.compile(r"^(config\.yaml|facts\.parquet|results\.parquet|history\.parquet|benchmarks\.parquet|"
                      r"pareto\.parquet|timings\.json|transitions\.parquet|reasons\.parquet|paper_reasons\.parquet|"
                      r"exploded\.parquet|base_distribution\.csv|base_reference_agreement\.csv|report|analysis|"
                      r"generations|categories|mixes)$")


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def shape(root: Path) -> dict:
    files = sorted(p for pkg in PACKAGES for p in (root / pkg).rglob("*.py"))
    names = {module_name(root, p): p for p in files}
    lines, deferred, literals = defaultdict(int), {}, defaultdict(set)
    for name, path in names.items():
        text = path.read_text()
        lines[name.split(".")[0]] += sum(1 for line in text.splitlines() if line.strip())
        tree = ast.parse(text)
        count = 0
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                count += sum(1 for n in ast.walk(func) if isinstance(n, (ast.Import, ast.ImportFrom)))
        deferred[name] = count
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and RUN_FILE.match(node.value):
                literals[node.value].add(name)
    return {"names": names, "lines": dict(lines), "deferred": deferred, "literals": literals}


def main(root: Path) -> None:
    found = shape(root)
    modules = [n for n, p in found["names"].items() if p.read_text().strip()]
    print(f"modules (non-empty): {len(modules)}; non-blank lines: {sum(found['lines'].values())} {found['lines']}")
    print(f"imports inside functions: {sum(found['deferred'].values())}")
    for name, count in sorted(found["deferred"].items(), key=lambda kv: -kv[1]):
        if count:
            print(f"  {count:3d} {name}")
    comps = cycles(import_graph(type_checking=True))  # tests/test_layout.py's, TYPE_CHECKING imports counted
    print(f"import cycles: {len(comps)}")
    for comp in comps:
        print(f"  {len(comp)} modules: {', '.join(comp)}")
    print("run-folder names spelled as literals (name: modules):")
    spelled = set()
    for value, mods in sorted(found["literals"].items()):
        spelled |= mods
        print(f"  {value}: {', '.join(sorted(mods))}")
    print(f"  modules spelling any: {len(spelled)}")


if __name__ == "__main__":
    main(Path(__file__).resolve().parents[1])
