"""The run directory's reuse logic: a finished stage is read back, never redone; an interrupted one is redone."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest

from mt.config import load_config
from mt.engine import Engine, StageError
from mt.progress import Reporter
from mt.rundir import DONE, RunDir, RunDirError, config_differences


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


def test_is_done_and_done_record_read_only_that_finished_stage(tmp_path):
    rd = open_rundir(tmp_path)
    assert not rd.is_done(1, "select")
    rd.run_stage(1, "select", lambda ctx: ({"policy": "p"}, {"m": 1}), seed=3)
    rd.run_stage(None, "data", lambda ctx: ({}, {}), seed=0)
    assert rd.is_done(1, "select") and rd.is_done(None, "data")
    assert not rd.is_done(2, "select") and not rd.is_done(1, "data") and not rd.is_done(None, "select")
    record = rd.done_record(1, "select")
    assert (record["stage"], record["iteration"], record["seed"]) == ("select", 1, 3)
    assert record["result"] == {"policy": "p"} and record["metrics"] == {"m": 1}
    assert rd.done_record(None, "data")["iteration"] is None
    rd.close()


def test_the_done_record_times_the_stage_and_stamps_it_in_utc(tmp_path, monkeypatch):
    import time as time_module

    from mt import rundir

    clock = iter([100.0, 102.3456])
    monkeypatch.setattr(rundir, "time", SimpleNamespace(perf_counter=lambda: next(clock), time=time_module.time))
    rd = open_rundir(tmp_path)
    rd.run_stage(1, "select", lambda ctx: ({}, {"m": 1}), seed=0)
    record = rd.done_record(1, "select")
    assert record["wall_time_s"] == 2.346 and record["finished_at"].endswith("+00:00")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"iteration": 1, "stage": "select", "wall_time_s": 2.346, "m": 1}]
    rd.close()


def test_a_done_file_left_in_a_partial_folder_is_not_a_finished_stage(tmp_path):
    rd = open_rundir(tmp_path)
    # Killed after writing DONE.json and before the rename: the attempt is not finished.
    partial = tmp_path / "run" / "iter_1" / "select.partial"
    partial.mkdir(parents=True)
    (partial / DONE).write_text(json.dumps({"stage": "select", "iteration": 1, "metrics": {}, "wall_time_s": 0,
                                            "finished_unix": 0, "result": {}}))
    assert not rd.is_done(1, "select") and rd.records() == []
    rd.run_stage(None, "data", lambda ctx: ({}, {}), seed=0)
    assert [r["stage"] for r in rd.records()] == ["data"]
    rd.close()


def test_a_run_directory_is_locked_while_it_is_open(tmp_path):
    rd = open_rundir(tmp_path)
    assert (tmp_path / "run" / ".lock").exists()
    with pytest.raises(RunDirError, match=r"run is in use by another mt-repro process; wait for it or pick another "
                                          r"--run-dir$"):
        open_rundir(tmp_path)
    rd.close()
    rd.close()  # closing twice is harmless
    open_rundir(tmp_path).close()  # the lock went with the close
    RunDir(tmp_path / "never-opened").close()  # and so is closing one never opened


def test_a_refused_config_names_the_changed_keys_and_leaves_the_run_as_it_was(tmp_path):
    base = {"run": {"iterations": 1}, **{f"k{i}": 0 for i in range(9)}}
    open_rundir(tmp_path, base).close()
    (tmp_path / "run" / "data").mkdir()
    (tmp_path / "run" / "data" / "DONE.json").write_text("{}")  # finished work: what a changed config must not touch
    advice = (r"\. Finished work is never overwritten: pass another --run-dir, or rerun with the settings saved in "
              r"its config\.json\.$")
    eight = {**base, **{f"k{i}": 1 for i in range(8)}}
    with pytest.raises(RunDirError, match=r"different config \(k0, k1, k2, k3, k4, k5, k6, k7\)" + advice):
        open_rundir(tmp_path, eight)
    nine = {**base, **{f"k{i}": 1 for i in range(9)}}
    with pytest.raises(RunDirError, match=r"different config \(k0, k1, k2, k3, k4, k5, k6, k7 \.\.\.\)" + advice):
        open_rundir(tmp_path, nine)
    with pytest.raises(RunDirError, match=r"different config \(new\.key\)") as refused:  # a key it did not have
        open_rundir(tmp_path, {**base, "new": {"key": 1}})
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == base
    # A refused open holds no lock, even while its error (and the traceback's frames) is still around.
    assert refused.value is not None
    open_rundir(tmp_path, base).close()


def test_config_differences_see_keys_on_either_side():
    assert config_differences({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}) == ["a.c"]
    assert config_differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1}}) == ["a.c"]
    assert config_differences({"run": {"iterations": 1}}, {"run": {"iterations": 2}}) == []


def test_each_session_records_where_and_how_it_ran(tmp_path):
    from mt import rundir

    open_rundir(tmp_path).close()
    (session,) = json.loads((tmp_path / "run" / "env.json").read_text())["sessions"]
    assert set(session) == {"started_at", "command", "seed", "git_commit", "platform", "versions"}
    assert session["started_at"].endswith("+00:00") and session["seed"] == 0 and session["command"] == ["test"]
    assert session["platform"] == platform.platform() and session["git_commit"] == rundir.git_commit()
    assert session["versions"] == rundir.versions()


def test_versions_name_each_package_or_none(monkeypatch):
    from mt import rundir

    monkeypatch.setattr(rundir, "PACKAGES", ("mt-repro", "no-such-package-for-mt-repro"))
    assert rundir.versions() == {"python": platform.python_version(), "mt-repro": metadata.version("mt-repro"),
                                 "no-such-package-for-mt-repro": None}


def test_git_commit_is_the_codes_checkout_wherever_the_run_starts(tmp_path, monkeypatch):
    from mt import rundir

    root = Path(rundir.__file__).resolve().parent.parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False)
    if head.returncode != 0:
        pytest.skip("the code is not a git checkout")
    monkeypatch.chdir(tmp_path)  # outside any repository
    assert rundir.git_commit() == head.stdout.strip()


def test_git_commit_gives_up_on_a_git_that_hangs(monkeypatch):
    from mt import rundir

    waited = []

    def run(args, timeout=None, **kwargs):
        waited.append(timeout)
        if timeout is None:
            raise AssertionError("git_commit would wait for ever")
        raise subprocess.TimeoutExpired(args, timeout)

    monkeypatch.setattr(rundir.subprocess, "run", run)
    assert rundir.git_commit() is None and 0 < waited[0] <= 5  # a run never waits long on its provenance


@pytest.mark.parametrize("outcome", [OSError("no git"), subprocess.CompletedProcess([], 128, "", "not a repo")])
def test_git_commit_is_none_without_git_or_a_repository(monkeypatch, outcome):
    from mt import rundir

    def run(*args, **kwargs):
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(rundir.subprocess, "run", run)
    assert rundir.git_commit() is None


def test_the_summary_is_written_at_the_root(tmp_path):
    rd = open_rundir(tmp_path)
    rd.write_summary({"final_policy": "p", "rows": [{"iteration": 1}]})
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == {"final_policy": "p",
                                                                          "rows": [{"iteration": 1}]}
    rd.close()


def test_a_run_is_bound_to_the_build_of_its_environment(tmp_path):
    """A world rebuilt by newer code or other packages has the same config: finished stages made on the old
    build must not be resumed on the new one."""
    rd = open_rundir(tmp_path)
    rd.bind_environment({"world_digest": "a", "world_fingerprint": "f1"})
    rd.bind_environment({"world_digest": "a", "world_fingerprint": "f2"})  # nothing finished: the new build binds
    rd.run_stage(None, "data", Counting(), 0)
    rd.bind_environment({"world_digest": "a", "world_fingerprint": "f2"})  # the same build resumes
    with pytest.raises(RunDirError, match=r"another build of its environment \(world_fingerprint: f2 then, f3 "
                                          r"now\)\. Finished work is never mixed .* pass another --run-dir"):
        rd.bind_environment({"world_digest": "a", "world_fingerprint": "f3"})
    assert json.loads((tmp_path / "run" / "environment.json").read_text())["world_fingerprint"] == "f2"
    rd.close()
    # A run from before environment.json: what its evaluations recorded is checked, the rest is taken as it is.
    old = open_rundir(tmp_path, name="old")
    old.run_stage(0, "evaluate", lambda ctx: ({}, {"world_fingerprint": "f1", "gold_mean": 0.5}), seed=0)
    old.run_stage(1, "evaluate", lambda ctx: ({}, {"world_fingerprint": "f2", "gold_mean": 0.6}), seed=0)
    with pytest.raises(RunDirError, match=r"\(world_fingerprint: f1 then, f2 now\)"):
        old.bind_environment({"world_digest": "a", "world_fingerprint": "f2"})
    assert not (tmp_path / "old" / "environment.json").exists()
    (tmp_path / "old" / "iter_1" / "evaluate" / "DONE.json").unlink()
    (tmp_path / "old" / "iter_1" / "evaluate").rmdir()
    old.bind_environment({"world_digest": "a", "world_fingerprint": "f1"})
    assert json.loads((tmp_path / "old" / "environment.json").read_text()) == {"world_digest": "a",
                                                                                "world_fingerprint": "f1"}
    old.close()


def test_the_loop_refuses_to_resume_a_run_in_another_environment_build(tmp_path):
    from dataclasses import dataclass

    from stubs import StubEnv, stub_run

    @dataclass
    class Built(StubEnv):
        build: str = "b1"

        def identity(self):
            return {"build": self.build}

    answers, scores = {"pi0": ["aa", "b"]}, {"aa": 1.0, "b": 0.0}
    stub_run(tmp_path, Built(["p1", "p2"], ["s1"]), answers, scores)
    done = sorted(p.relative_to(tmp_path) for p in tmp_path.glob("run/**/DONE.json"))
    assert done
    stub_run(tmp_path, Built(["p1", "p2"], ["s1"]), answers, scores)  # the same build: read back
    with pytest.raises(RunDirError, match=r"build: b1 then, b2 now"):
        stub_run(tmp_path, Built(["p1", "p2"], ["s1"], build="b2"), answers, scores)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.glob("run/**/DONE.json")) == done


def test_a_field_added_since_a_run_was_saved_is_no_difference_at_its_default():
    defaults = {"a": {"b": 0, "c": 2}}
    assert config_differences({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}, defaults) == []
    # Set away from its default, the new field is a difference; so is a field the config no longer has.
    assert config_differences({"a": {"b": 1}}, {"a": {"b": 1, "c": 3}}, defaults) == ["a.c"]
    assert config_differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1}}, defaults) == ["a.c"]


def test_a_run_saved_before_a_config_field_existed_resumes(tmp_path):
    cfg = load_config("tiny")
    run = tmp_path / "run"
    Engine(cfg, run).close()
    stage = RunDir(run).stage_dir(1, "estep")
    stage.mkdir(parents=True)
    (stage / DONE).write_text("{}")
    saved = json.loads((run / "config.json").read_text())
    del saved["estep"]["pair_rule"]  # as a run made before the field existed saved it
    (run / "config.json").write_text(json.dumps(saved))
    Engine(cfg, run).close()
    with pytest.raises(RunDirError, match="estep.pair_rule"):
        Engine(load_config("tiny", overrides=["estep.pair_rule=max_min"]), run)
