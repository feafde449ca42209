"""ARCHITECTURE.md stays true: what it names exists, and its import rules hold.

Imports are read from the source (module level, inside functions, and under TYPE_CHECKING
alike: a circle drawn only for the type checker is still a circle for the reader)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vflow_cli"
MAP = (ROOT / "ARCHITECTURE.md").read_text()

# the floors of ARCHITECTURE.md's code map: a module imports from its floor or below
GROUND = {"status", "errors", "console"}
WIRE = {"framing"}
RUNNER = {
    "runner", "stage", "catalogue", "options", "packets", "images", "colors", "opencv",
    "capture", "videofile", "videoencoder", "clock", "display", "testing", "models", "chain",
    "busy", "expr", "template", "redact", "image_headers", "__init__",
}  # fmt: skip
SUBJECTS = {"vision", "web", "net", "graph"}
TOP = {"cli", "docgen", "__main__"}


def floor(module: str) -> int:
    part = module.split(".")[1] if "." in module else "__init__"
    for level, names in enumerate((GROUND, WIRE, RUNNER, SUBJECTS, TOP)):
        if part in names:
            return level
    raise AssertionError(f"{module} is on no floor of ARCHITECTURE.md: add it there")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The vflow_cli modules `path` imports (`from pkg import submodule` is the submodule)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {name for name in out if name.startswith("vflow_cli") and name in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_every_path_the_map_names_exists():
    named = set(re.findall(r"`((?:vflow_cli|stages|tests|man|examples)/[\w./-]*)`", MAP))
    assert len(named) > 10
    missing = [name for name in sorted(named) if not (ROOT / name).exists()]
    assert not missing, f"ARCHITECTURE.md names what is not there: {missing}"
    for folder in ("framing", "net", "web", "vision", "graph"):
        paragraph = MAP.split(f"`vflow_cli/{folder}/`", 1)[1].split("\n- ", 1)[0]
        for py in re.findall(r"`(\w+\.py)`", paragraph):
            assert (PACKAGE / folder / py).exists() or (PACKAGE / py).exists(), py


def test_every_package_of_vflow_cli_is_on_the_map():
    for package in sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        assert f"vflow_cli/{package}/" in MAP, f"ARCHITECTURE.md does not place {package}/"


def test_no_module_imports_from_a_floor_above_its_own():
    wrong = [
        f"{a} (floor {floor(a)}) imports {b} (floor {floor(b)})"
        for a, targets in graph().items()
        for b in targets
        if floor(b) > floor(a)
    ]
    assert not wrong, "\n".join(wrong)


def test_only_the_top_floor_imports_the_cli():
    users = sorted(a for a, targets in graph().items() if "vflow_cli.cli" in targets)
    assert all(floor(user) == 4 for user in users), users


def test_only_framing_knows_msgpack():
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "stages").glob("*.py")]:
        if "framing" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        names = [
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        ]
        assert not any(n and n.split(".")[0] == "msgpack" for n in names), path


def test_no_import_circles():
    edges = graph()
    circles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                circles.append(sorted(part))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not circles, circles


def test_no_file_of_vflow_cli_is_over_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert not long, long
