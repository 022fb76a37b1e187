"""Architecture rules that keep the engine testable and the configuration in one place."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

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


def core_modules() -> list[str]:
    return sorted(f"core.{p.stem}" for p in (ROOT / "core").glob("*.py") if p.stem != "__main__")


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
    for path in (ROOT / "core").glob("*.py"):
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


def test_arch004_detects_a_forbidden_import(tmp_path):
    """The static check above can fail: it flags a planted 'import plotly'."""
    planted = tmp_path / "bad.py"
    planted.write_text("def f():\n    import plotly.express as px\n    return px\n")
    names = [
        a.name
        for node in ast.walk(ast.parse(planted.read_text()))
        if isinstance(node, ast.Import)
        for a in node.names
    ]
    assert [n for n in names if n.split(".")[0] in FORBIDDEN_IN_CORE] == ["plotly.express"]
