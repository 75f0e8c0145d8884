"""The run directory's reuse logic: a finished stage is read back, never redone; an interrupted one is redone."""

from __future__ import annotations

import json

import pytest

from mt.config import load_config
from mt.engine import Engine, StageError
from mt.progress import Reporter
from mt.rundir import DONE, RunDir, RunDirError


def open_rundir(tmp_path, config=None, name="run") -> RunDir:
    return RunDir.open(tmp_path / name, config or {"a": 1, "run": {"iterations": 1}}, 0, ["test"])


class Counting:
    """A stage function that counts its calls and writes one file."""

    def __init__(self, result=None):
        self.calls = 0
        self.result = result or {"file": None}

    def __call__(self, ctx):
        self.calls += 1
        (ctx.dir / "out.txt").write_text("made")
        return {"file": ctx.rel(ctx.dir / "out.txt")}, {"calls": self.calls}


def test_a_finished_stage_is_read_back_not_rerun(tmp_path):
    rd = open_rundir(tmp_path)
    fn = Counting()
    first, ran = rd.run_stage(1, "estep_generate", fn, seed=5)
    assert ran and fn.calls == 1 and first == {"file": "iter_1/estep_generate/out.txt"}
    done = rd.stage_dir(1, "estep_generate") / DONE
    before = (done.read_bytes(), done.stat().st_mtime_ns)
    again, ran = rd.run_stage(1, "estep_generate", fn, seed=5)
    assert not ran and fn.calls == 1 and again == first
    assert (done.read_bytes(), done.stat().st_mtime_ns) == before
    record = json.loads(done.read_text())
    assert record["seed"] == 5 and record["metrics"] == {"calls": 1} and record["iteration"] == 1
    assert rd.path(first["file"]).read_text() == "made"
    rd.close()


def test_an_interrupted_attempt_is_removed_and_redone(tmp_path):
    rd = open_rundir(tmp_path)

    def dies(ctx):
        (ctx.dir / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rd.run_stage(None, "data", dies, seed=0)
    partial = tmp_path / "run" / "data.partial"
    assert (partial / "half.txt").exists() and not (tmp_path / "run" / "data").exists()

    seen = []

    def fresh(ctx):
        seen.append(sorted(p.name for p in ctx.dir.iterdir()))
        return {}, {}

    rd.run_stage(None, "data", fresh, seed=0)
    assert seen == [[]]  # the new attempt starts from an empty folder
    assert not partial.exists() and (tmp_path / "run" / "data" / DONE).exists()
    rd.close()


def test_a_stage_folder_without_done_is_not_ours(tmp_path):
    rd = open_rundir(tmp_path)
    (tmp_path / "run" / "iter_1" / "select").mkdir(parents=True)
    fn = Counting()
    with pytest.raises(RunDirError, match=r"iter_1/select exists without DONE.json"):
        rd.run_stage(1, "select", fn, seed=0)
    assert fn.calls == 0
    rd.close()


def test_metrics_are_derived_from_the_done_files_in_finishing_order(tmp_path):
    rd = open_rundir(tmp_path)
    for t, name in [(None, "data"), (1, "estep_generate"), (1, "select")]:
        rd.run_stage(t, name, lambda ctx, n=name: ({}, {"who": n}), seed=0)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["iteration"], r["stage"], r["who"]) for r in rows] == [
        (None, "data", "data"), (1, "estep_generate", "estep_generate"), (1, "select", "select")]
    rd.close()


def test_reopening_checks_the_config_and_records_each_session(tmp_path):
    rd = open_rundir(tmp_path)
    rd.close()
    # Nothing finished yet: nothing to protect, so a corrected config takes over the folder.
    open_rundir(tmp_path, {"a": 2, "run": {"iterations": 1}}).close()
    rd = open_rundir(tmp_path)
    rd.run_stage(None, "data", Counting(), 0)
    rd.close()
    with pytest.raises(RunDirError, match=r"different config \(a\)"):
        open_rundir(tmp_path, {"a": 2, "run": {"iterations": 1}})
    # Extending a run (more iterations) is allowed: finished stages stay valid.
    open_rundir(tmp_path, {"a": 1, "run": {"iterations": 3}}).close()
    sessions = json.loads((tmp_path / "run" / "env.json").read_text())["sessions"]
    assert len(sessions) == 4 and sessions[0]["command"] == ["test"] and sessions[0]["versions"]["python"]


class Recording(Reporter):
    def __init__(self):
        super().__init__(enabled=False)
        self.lines = []

    def log(self, message):
        self.lines.append(message)


def test_the_engine_says_what_it_reuses_and_names_the_stage_that_failed(tmp_path):
    cfg = load_config(None, overrides=["run.env=prompts"])
    reporter = Recording()
    engine = Engine(cfg, tmp_path / "run", reporter)
    fn = Counting()
    engine.stage(2, "mstep_filter", fn)
    engine.stage(2, "mstep_filter", fn)
    assert fn.calls == 1 and reporter.lines == ["[dim]iter_2/mstep_filter: done earlier, reusing it[/dim]"]

    def broken(ctx):
        raise ValueError("bad pairs")

    with pytest.raises(StageError, match=r"stage iter_2/mstep_train failed: ValueError: bad pairs.*rerun the same "
                                         r"command to resume here"):
        engine.stage(2, "mstep_train", broken)
    assert (tmp_path / "run" / "iter_2" / "mstep_train.partial").exists()
    engine.close()
