"""Architecture rules: the layer order, no import cycles, imports at module top, the engine
free of the UI stack and the configuration read in one place (docs/architecture.md)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_CORE = (
    "dash",
    "plotly",
    "flask",
    "flask_caching",
    "dash_bootstrap_components",
    "dash_ag_grid",
    "components",
    "settings",
)

#: the layer order of docs/architecture.md, top first: an import may only point DOWN this list
#: (or within its own layer). The entry points may import everything.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("entry", ("app", "components.warmup")),
    ("pages", ("components.pages", "components.api", "components.shell", "components.unmask")),
    ("cohort", ("components.cohort",)),
    ("data", ("components.data",)),
    ("blinding", ("components.blinding",)),
    ("server", ("components.server",)),
    ("settings", ("settings",)),
    ("core", ("core",)),
)
#: pure builders: imported by pages and cohort panels; they import only each other and the pure
#: engine (core)
BUILDERS = (
    "components.figures",
    "components.tables",
    "components.format",
    "components.theme",
    "components.ids",
)
#: documented exceptions to the layer order: (importer, imported, why)
EXCEPTIONS = (("components.pages.data", "components.warmup", "an import starts the cache warm-up"),)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_files() -> list[Path]:
    files = [ROOT / "app.py", ROOT / "settings.py"]
    for pkg in ("components", "core"):
        files += sorted((ROOT / pkg).rglob("*.py"))
    return files


def imports_of(path: Path) -> list[tuple[str, int, bool, str]]:
    """(imported module, line, inside a function?, source line) of every absolute import."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    out: list[tuple[str, int, bool, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for a in child.names:
                    out.append((a.name, child.lineno, in_function, lines[child.lineno - 1]))
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for a in child.names:
                    # "from pkg import submodule" imports the submodule
                    name = f"{child.module}.{a.name}"
                    target = name if _is_project_module(name) else child.module
                    out.append((target, child.lineno, in_function, lines[child.lineno - 1]))
            visit(child, nested)

    visit(tree, False)
    return out


def _is_project_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def layer_of(module: str) -> int | None:
    for i, (_name, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def is_builder(module: str) -> bool:
    return module in BUILDERS or module == "components.cohort.charts"


def layer_violations(edges: Iterable[tuple[str, str]]) -> list[str]:
    """Imports that point up the layer order, or builders that import a layer."""
    allowed = {(a, b) for a, b, _why in EXCEPTIONS}
    bad = []
    for src, dst in edges:
        if (src, dst) in allowed or src.split(".")[0] not in ("app", "components", "core"):
            continue
        if is_builder(src):
            if not (is_builder(dst) or dst.split(".")[0] == "core"):
                bad.append(f"builder {src} imports {dst}")
            continue
        if is_builder(dst):
            if layer_of(src) not in (0, 1, 2):  # entry, pages, cohort
                bad.append(f"{src} imports the builder {dst}")
            continue
        s, d = layer_of(src), layer_of(dst)
        if s is None or d is None:
            bad.append(f"{src} -> {dst}: module outside the layer table")
        elif s != 0 and d < s:
            bad.append(f"{src} ({LAYERS[s][0]}) imports {dst} ({LAYERS[d][0]})")
    return bad


def project_edges() -> list[tuple[str, str]]:
    edges = []
    for path in project_files():
        src = module_name(path)
        for dst, _line, _inside, _text in imports_of(path):
            if dst.split(".")[0] in ("app", "components", "core", "settings") and dst != src:
                edges.append((src, dst))
    return edges


def find_cycle(edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """One import cycle among modules (package ``__init__`` edges count), or None."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := dfs(node)):
            return found
    return None


def _without_package_inits(edges: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A package ``__init__`` that re-exports its modules points at them; a module importing a
    sibling by ``from pkg import x`` points at the package. Both are fine: Python resolves the
    submodule. Keep module → module edges only."""
    packages = {module_name(p.parent) for p in ROOT.rglob("__init__.py") if ".venv" not in p.parts}
    return [(a, b) for a, b in edges if a not in packages and b not in packages]


# --- the tests --------------------------------------------------------------------------------


def test_arch010_imports_follow_the_layer_order():
    assert layer_violations(project_edges()) == []


def test_arch011_layer_check_can_fail():
    assert layer_violations([("components.server.context", "components.data.cohort")]) == [
        "components.server.context (server) imports components.data.cohort (data)"
    ]
    assert layer_violations([("components.figures", "components.data.cohort")]) == [
        "builder components.figures imports components.data.cohort"
    ]
    assert layer_violations([("components.data.cohort", "components.figures")]) == [
        "components.data.cohort imports the builder components.figures"
    ]
    assert layer_violations([("core.sofa", "components.blinding")]) != []
    assert layer_violations([("app", "components.pages.cohort")]) == []


def test_arch012_no_import_cycles():
    assert find_cycle(_without_package_inits(project_edges())) is None


def test_arch013_cycle_check_can_fail():
    assert find_cycle([("a", "b"), ("b", "c"), ("c", "a")]) == ["a", "b", "c", "a"]
    assert find_cycle([("a", "b"), ("b", "c")]) is None


DEFERRED_MARK = "# deferred import:"


def documented(lines: list[str], lineno: int) -> bool:
    """The import at ``lineno`` (1-based) carries the mark on its line, or in the comment that
    heads its block of consecutive imports."""
    i = lineno - 1
    if DEFERRED_MARK in lines[i]:
        return True
    i -= 1
    while i >= 0:
        text = lines[i].strip()
        if DEFERRED_MARK in text:
            return True
        if not (text.startswith(("#", "import ", "from ")) or text.endswith((",", "(", ")"))):
            return False
        i -= 1
    return False


def imports_inside_functions(paths: Iterable[Path] | None = None) -> list[str]:
    out = []
    for path in project_files() if paths is None else paths:
        lines = path.read_text().splitlines()
        for dst, line, inside, _text in imports_of(path):
            if inside and not documented(lines, line):
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                out.append(f"{where}:{line}: {dst}")
    return out


def test_arch014_imports_at_module_top_unless_documented():
    """An import inside a function hides a dependency; the few that must (a heavy backend
    loaded on first use, a config file read before the app) say why on the line."""
    assert imports_inside_functions() == []


def test_arch015_undocumented_deferred_import_is_found(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    x = 1\n    import json\n    return json, x\n")
    good = tmp_path / "good.py"
    good.write_text(
        "def f():\n    # deferred import: heavy, first use only\n    import json\n"
        "    import csv\n    return json, csv\n"
    )
    assert imports_inside_functions([bad, good]) == ["bad.py:3: json"]


def core_modules() -> list[str]:
    return sorted(
        module_name(p)
        for p in (ROOT / "core").rglob("*.py")
        if p.stem != "__main__" and "__pycache__" not in p.parts
    )


def test_arch001_core_imports_no_ui_stack():
    """Importing every core module pulls in none of dash, plotly, flask or components."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {core_modules()!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN_IN_CORE]
    assert len(core_modules()) >= 3
    assert bad == []


def test_arch002_core_sources_do_not_import_ui_stack():
    """Static check too (covers imports inside functions that the import test cannot reach)."""
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN_IN_CORE
            ]
    assert offenders == []


def reads_environment(source: str) -> bool:
    """True if the code (not its docstrings) touches os.environ / os.getenv / putenv."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "putenv"}:
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and {a.name for a in node.names} & {"environ", "getenv", "putenv"}
        ):
            return True
    return False


def test_arch003_only_settings_reads_the_environment():
    offenders = []
    for path in ROOT.glob("**/*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {".venv", "tests", "bench", "data"} or rel.name == "settings.py":
            continue
        if reads_environment(path.read_text()):
            offenders.append(str(rel))
    assert offenders == []


def test_arch003b_environment_check_can_fail():
    assert reads_environment("import os\nx = os.environ.get('PORT')\n")
    assert reads_environment("from os import getenv\n")
    assert not reads_environment('"""never reads os.environ"""\nimport os\nos.path.join("a")\n')


@pytest.mark.parametrize(
    ("source", "inside"),
    [
        ("def f():\n    import plotly.express as px\n    return px\n", True),
        ("import plotly\n", False),
    ],
)
def test_arch004_detects_imports_and_where_they_are(tmp_path, source, inside):
    planted = tmp_path / "bad.py"
    planted.write_text(source)
    found = imports_of(planted)
    assert [(m.split(".")[0], i) for m, _l, i, _t in found] == [("plotly", inside)]
