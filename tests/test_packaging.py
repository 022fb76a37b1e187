"""Packaging: ``pip wheel .`` builds a wheel with the packages, the data files and the
``immunosep`` console command, while the flat top level (app.py, components/, core/) stays.

The source is copied to a temporary folder first so that the build's egg-info and build/
folders never land in the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.io.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (
    "app.py",
    "settings.py",
    "pyproject.toml",
    "requirements.txt",
    "core",
    "components",
    "assets",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    pytest.importorskip("wheel")
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = out.glob("immunosep_dashboard-*.whl")
    with zipfile.ZipFile(path) as zf:
        yield zf


def test_pkg001_wheel_holds_every_package_and_data_file(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    packages = sorted(
        p.parent.relative_to(ROOT).as_posix()
        for top in ("core", "components")
        for p in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in p.parts
    )
    assert len(packages) > 5
    for pkg in packages:
        assert f"{pkg}/__init__.py" in names, pkg
    modules = sorted(
        p.relative_to(ROOT).as_posix()
        for top in ("core", "components")
        for p in (ROOT / top).rglob("*.py")
        if "__pycache__" not in p.parts
    )
    assert set(modules) <= names
    assert {"app.py", "settings.py"} <= names
    for csv in sorted((ROOT / "core" / "io" / "mappings").glob("*.csv")):
        assert f"core/io/mappings/{csv.name}" in names
    for asset in sorted((ROOT / "assets").iterdir()):
        assert f"assets/{asset.name}" in names
    assert not [n for n in names if n.startswith(("tests/", "data/", ".venv/"))]


def test_pkg002_console_command_and_dependencies(wheel: zipfile.ZipFile) -> None:
    (ep,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(ep).decode()
    assert "[console_scripts]" in text
    assert "immunosep = core.io.cli:console_main" in text
    (meta,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    requires = {
        line.split(":", 1)[1].strip().split("==")[0].lower()
        for line in wheel.read(meta).decode().splitlines()
        if line.startswith("Requires-Dist:")
    }
    assert {"dash", "pandas", "pyreadstat", "sqlalchemy", "lifelines"} <= requires


def test_pkg003_the_command_has_serve_import_validate_export_demo(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(["--help"])
    assert info.value.code == 0
    usage = capsys.readouterr().out
    for command in ("serve", "import", "validate", "export", "demo"):
        assert command in usage
    with pytest.raises(SystemExit):
        cli_main(["export", "--help"])
    assert "{csv,xpt,json,raw,adam}" in capsys.readouterr().out
