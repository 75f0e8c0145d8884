"""The reference trajectory: a reduced run ends with the same metric rows and the same weights, bit for bit.

The record was made from the code before the runner was restructured; a refactor that moves any number
fails here. Bitwise equality is promised only for the library versions and CPU kernels the record names.
"""

from __future__ import annotations

import json

import pytest
from reference_run import RECORD, environment, run_reference

pytestmark = pytest.mark.slow


def test_a_reduced_run_reproduces_the_reference_trajectory(tmp_path):
    record = json.loads(RECORD.read_text())
    here = environment()
    if here != record["environment"]:
        pytest.skip(f"the reference was recorded with {record['environment']}, this machine has {here}; "
                    "regenerate it with `python -m tests.reference_run --write` before a refactor")
    got = run_reference(tmp_path)
    assert [(r["iteration"], r["stage"]) for r in got["rows"]] == [(r["iteration"], r["stage"]) for r in record["rows"]]
    for mine, want in zip(got["rows"], record["rows"], strict=True):
        missing = sorted(set(want) - set(mine))
        assert not missing, f"{want['stage']}: metrics {missing} are no longer written"
        assert {k: mine[k] for k in want} == want
    assert got["final"] == record["final"]
    assert got["weights"] == record["weights"]
