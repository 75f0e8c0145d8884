"""What `pip install .` (not editable) carries, and the layering the packages keep.

An installed mt-repro (not editable) must find the published numbers and the benchmarks' facts from any
directory, without the source tree's results/ folder; mt/ must not import bench/ or reproduce/, and bench/
must not import reproduce/. `nox -s wheel` does the full check in a fresh virtual environment.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(".git", ".venv", ".nox", "runs", "results", "build", "dist", "*.egg-info",
                              "__pycache__", ".ruff_cache", ".pytest_cache", "tests", "docs")


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package, forbidden", [("bench", "reproduce"), ("mt", "reproduce"), ("mt", "bench")])
def test_lower_layers_never_import_upper_ones(package, forbidden):
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / package).rglob("*.py")
                 if any(m == forbidden or m.startswith(forbidden + ".") for m in imports(p))]
    assert not offenders


def test_the_loop_knows_no_environment_in_particular():
    assert not [m for m in imports(ROOT / "mt" / "loop.py") if m.startswith(("mt.world", "bench"))]
    source = (ROOT / "mt" / "loop.py").read_text()
    assert "from .world" not in source and "world" not in source.replace("gold world", "")


def test_an_installed_wheel_finds_its_data_from_an_empty_directory(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)  # built from a copy: the checkout is left as it was
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(wheels)], check=True,
                   cwd=source, timeout=300, capture_output=True)
    (wheel,) = wheels.glob("mt_repro-*.whl")
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=300,
                   capture_output=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    code = ("import bench, reproduce\n"
            "from reproduce.published import load_published\n"
            "from bench.metrics.reward_bench import EXPECTED_PAIRS\n"
            "from typer.testing import CliRunner\n"
            "from reproduce.cli import app\n"
            f"assert bench.__file__.startswith({str(site)!r}) and reproduce.__file__.startswith({str(site)!r})\n"
            "rows = {r['key']: r['average'] for r in load_published('table2') if r['source'] == 'S1'}\n"
            "print(rows['mutual-taught'], sum(EXPECTED_PAIRS.values()), CliRunner().invoke(app, ['bench', 'list'])"
            ".exit_code)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=empty, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["90.3", "2985", "0"]
