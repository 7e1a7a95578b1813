"""The house rules that code review would otherwise have to catch: no import cycle, lazy torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "leapscreen"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """leapscreen modules that ``path`` imports anywhere (module level or inside functions)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names if a.name.startswith("leapscreen")}
            elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                if sub.module.startswith("leapscreen"):
                    found.add(sub.module)
                    found |= {f"{sub.module}.{a.name}" for a in sub.names} & modules
    return {m for m in found if m in modules}


def test_no_import_cycle():
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    graph = {m: imports_of(p, set(files)) - {m} for m, p in files.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_ridge_baseline_does_not_import_torch():
    code = (
        "import sys, numpy as np, pandas as pd\n"
        "from leapscreen.models import make_model\n"
        "from leapscreen.registry import head_names, representation_names\n"
        "head_names(); representation_names()\n"
        "rng = np.random.default_rng(0)\n"
        "X = pd.DataFrame(rng.normal(size=(40, 30)), columns=[f'g{i}' for i in range(30)])\n"
        "Y = pd.DataFrame(rng.normal(size=(40, 2)), columns=['a', 'b'])\n"
        "make_model('ridge', n_genes=20).fit(X, Y).predict(X)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
