"""What `pip install .` (not editable) must carry, and the layering the issue tracker asked for.

A wheel holds only the packages: presets, recipes, published numbers and judge templates must be
package data, or a user outside the source tree gets a traceback. The full check (a fresh venv, the
commands run from an empty folder) is `nox -s wheel`; this test builds the wheel and reads its listing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.mark.slow
def test_the_wheel_carries_its_data(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("mt_repro-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("mt/presets/tiny.toml", "mt/presets/paper.toml", "reproduce/recipes/paper.toml",
                   "reproduce/recipes/tiny.toml"):
        assert needed in names, needed
    published = [n for n in names if n.endswith(".csv") and "published" in n]
    assert {Path(n).name for n in published} >= {"table1.csv", "table2.csv", "table3.csv"}
    assert not [n for n in names if n.startswith(("tests/", "results/", "runs/"))]
