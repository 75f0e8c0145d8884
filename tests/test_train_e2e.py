"""End to end on the gold world: two iterations, their artefacts and metrics, and resume after a kill.

The reference run is shared by the checks; the interrupted run must end with the same models and
the same metrics (timings aside) as the run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# Small enough for CI (seconds per iteration on two cores), large enough to train. tau = 0 keeps the
# stop rule from ending the reference run early; test_stop_rule_ends_the_run checks that rule.
# The small world's pi_0 often repeats itself, so most pseudo-pairs are identical and skipped: the E-step's pairs
# give the RM update more to train on, and a quarter of the pseudo-pairs is held out so the split is not empty.
OVERRIDES = ["data.max_prompts=450", "mstep.samples_per_prompt=1", "run.iterations=2", "select.tau=0.0",
             "mstep.include_estep_pairs=true", "mstep.heldout_fraction=0.25"]
TIMING_KEYS = {"wall_time_s", "tokens_per_s", "finished_at", "finished_unix"}


def cli(world: list[str], run_dir: Path, *extra: str) -> list[str]:
    sets = [*world, *OVERRIDES, *extra]
    cmd = [sys.executable, "-m", "reproduce", "train", "--preset", "tiny", "--run-dir", str(run_dir), "--quiet"]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def default_sigint() -> None:
    """In the child: Ctrl-C raises KeyboardInterrupt even when the test runner was started with SIGINT ignored
    (a background job), which the child would otherwise inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def reference_run(small_world, small_world_overrides, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "reference"
    start = time.perf_counter()
    out = subprocess.run(cli(small_world_overrides, run_dir), env=env(), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir / "test_seconds.txt").write_text(f"{time.perf_counter() - start:.1f}")
    (run_dir / "stdout.txt").write_text(out.stdout)
    return run_dir


def stable_metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def done_files(run_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every finished stage's record, with its modification time: what a resume must leave alone."""
    return {str(p.relative_to(run_dir)): (p.read_bytes(), p.stat().st_mtime_ns) for p in run_dir.glob("**/DONE.json")
            if ".partial" not in str(p)}


def final_weights(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    return {role: load_file(str(Path(summary[f"final_{role}"]) / "model.safetensors")) for role in ("policy", "reward")}


def test_two_iterations_write_every_stage_and_metric(reference_run):
    stages = ["estep_generate", "estep_score", "estep_pairs", "estep_train", "select",
              "mstep_generate", "mstep_filter", "mstep_train", "evaluate"]
    for t in (1, 2):
        for s in stages:
            assert (reference_run / f"iter_{t}" / s / "DONE.json").exists(), f"iter_{t}/{s}"
    assert not list(reference_run.glob("**/*.partial"))
    config = json.loads((reference_run / "config.json").read_text())
    assert config["run"]["seed"] == 0 and config["data"]["max_prompts"] == 450
    env_info = json.loads((reference_run / "env.json").read_text())["sessions"][0]
    assert env_info["versions"]["trl"] and env_info["versions"]["torch"] and env_info["seed"] == 0

    by_stage = {(r["iteration"], r["stage"]): r for r in stable_metrics(reference_run)}
    pairs = by_stage[(1, "estep_pairs")]
    assert pairs["pairs_built"] + pairs["pairs_skipped_tie"] == 80  # the small world's 240 prompts, 3 parts
    train = by_stage[(1, "estep_train")]
    assert train["dpo_steps"] > 0 and 0 <= train["dpo_reward_accuracy"] <= 1 and train["loss_last"] > 0
    select = by_stage[(1, "select")]
    assert select["selected"].startswith("checkpoint-") and select["tau"] == 0.0
    assert set(select["win_rates"]) == {p.name for p in (reference_run / "iter_1/estep_train/candidates").glob("checkpoint-*")}
    filt = by_stage[(1, "mstep_filter")]
    assert filt["filter_kept"] + filt["filter_dropped"] == filt["pseudo_pairs"] == 80
    assert filt["eps_t"] > 0 and filt["eps_definition"] == "reward_std"
    assert filt["rm_heldout_pairs"] >= 1 and 0 <= by_stage[(1, "mstep_train")]["rm_heldout_accuracy_after"] <= 1
    for t in (0, 1, 2):
        assert 0 <= by_stage[(t, "evaluate")]["gold_mean"] <= 1
    summary = json.loads((reference_run / "summary.json").read_text())
    assert summary["iterations_done"] == 2 and not summary["stopped_by_rule"]
    assert "iteration 2" in (reference_run / "stdout.txt").read_text()  # the summary table was printed


def test_the_policy_and_reward_model_changed(reference_run, small_world):
    world = small_world
    weights = final_weights(reference_run)
    pm0 = load_file(str(Path(world.policy) / "model.safetensors"))
    rm0 = load_file(str(Path(world.reward) / "model.safetensors"))
    assert any((weights["policy"][k] != pm0[k]).any() for k in pm0)
    assert any((weights["reward"][k] != rm0[k]).any() for k in rm0)


def test_killed_run_resumes_to_the_same_result(reference_run, small_world_overrides, tmp_path):
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(cli(small_world_overrides, run_dir), env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    # Kill inside iteration 1's DPO training: a stage that is half written.
    while not (run_dir / "iter_1" / "estep_train.partial" / "candidates").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "iter_1" / "estep_train" / "DONE.json").exists()

    # Second interruption, with SIGINT, later on: the user's Ctrl-C.
    proc = subprocess.Popen(cli(small_world_overrides, run_dir), env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    while not (run_dir / "iter_2" / "estep_generate").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    assert proc.returncode == 130
    assert "rerun the same command to resume" in proc.stderr.read()

    finished = done_files(run_dir)
    assert len(finished) >= 9  # data, iteration 0's evaluation and iteration 1's stages at least
    out = subprocess.run(cli(small_world_overrides, run_dir), env=env(), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    after = done_files(run_dir)
    assert {k: after[k] for k in finished} == finished  # finished stages were read back, not redone
    assert len(after) > len(finished)

    assert stable_metrics(run_dir) == stable_metrics(reference_run)
    got, want = final_weights(run_dir), final_weights(reference_run)
    for role in ("policy", "reward"):
        assert got[role].keys() == want[role].keys()
        assert all((got[role][k] == want[role][k]).all() for k in want[role]), role
    assert len(json.loads((run_dir / "env.json").read_text())["sessions"]) == 3


def test_changed_config_refuses_to_reuse_the_run_dir(reference_run, small_world_overrides):
    out = subprocess.run(cli(small_world_overrides, reference_run, "estep.beta=0.3"), env=env(), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2
    assert "different config (estep.beta)" in out.stderr and "Finished work is never overwritten" in out.stderr


def test_stop_rule_ends_the_run_and_keeps_the_previous_policy(small_world, small_world_overrides, tmp_path):
    world = small_world
    run_dir = tmp_path / "stopped"
    # tau = 1: a candidate would have to beat pi_0 on every selection prompt (the stub tests pin the boundary).
    out = subprocess.run(cli(small_world_overrides, run_dir, "select.tau=1.0"), env=env(), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_by_rule"] and summary["iterations_done"] == 0
    assert summary["final_policy"] == world.policy and summary["final_reward"] == world.reward
    assert not (run_dir / "iter_1" / "mstep_generate").exists()
    assert "stopped by the stop rule" in out.stdout
