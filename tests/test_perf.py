"""The benchmark runs end to end on toy inputs and reports every key; timings are not checked here.

Thresholds on wall-clock numbers would fail on a busy machine and pass on a fast one for the wrong
reasons, so ``python -m reproduce.perf`` measures and this file only keeps it runnable. It also
checks the two fast paths the benchmark relies on and the shipped accelerate configs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mt.chat import as_messages, encode_conversation
from mt.config import load_config
from reproduce import perf

PROMPTS = ["sort 3 1 2", "add 4+5", "reverse abc", "a longer prompt to vary the length"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Toy models gain nothing from a second thread, and on a shared machine it can cost 10x."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def inputs(tiny_models) -> perf.BenchInputs:
    cfg = load_config("tiny", overrides=["sampling.max_new_tokens=4", "estep.save_steps=1000"])
    prompts = [as_messages(p) for p in PROMPTS]
    pairs = [{"id": str(i), "prompt": p, "chosen": f"yes {i}", "rejected": "no"} for i, p in enumerate(prompts * 2)]
    return perf.BenchInputs(cfg, str(tiny_models[0]), str(tiny_models[1]), prompts, pairs)


def test_full_report_has_every_key(inputs, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(perf, "bench_inputs", lambda *a, **k: inputs)
    opts = perf.BenchOptions(repeats=1, batch_size=2, memory=False, sweep=(2,), warmup=False)
    report = perf.run_benchmark(opts, log=lambda _: None)
    assert set(report["headline"]) == set(perf.TARGETS) == set(report["meets_target"])
    for key in ("estep", "mstep"):
        for field in ("update_ratio", "train_ratio", "update_ratio_spread", "ours_update_s", "bare_update_s",
                      "ours_outside_train_s", "bare_outside_train_s", "overhead_fraction", "train_tokens_per_s", "params"):
            assert field in report[key], (key, field)
        assert report[key]["train_tokens"] > 0 and report[key]["mfu"] is None  # no MFU off a GPU
    assert report["generation"]["batched_tokens_per_s"] > 0 and report["generation"]["single_tokens_per_s"] > 0
    assert report["scoring"]["batched_pairs_per_s"] > 0 and report["scoring"]["single_pairs_per_s"] > 0
    assert set(report["generation"]["sweep_tokens_per_s"]) == {"2"}
    json_path, md_path = perf.write_report(report, tmp_path)
    table = md_path.read_text()
    for label in ("E-step update", "M-step update", "generation, batch 2", "scoring, batch 2", "tokens/s",
                  "pairs/s"):
        assert label in table
    assert json_path.exists()


def test_stage_reports_its_peak_memory(inputs):
    for stage in ("score", "mstep_ours"):
        row = perf.run_stage(stage, inputs, batch_size=2)
        assert row["stage"] == stage and row["peak_rss_mb"] >= row["rss_before_mb"] > 0
        assert row["gpu_peak_mb"] is None


def test_options_reach_the_stage_subprocess():
    opts, _ = perf.parse_args(["--pairs", "7", "--batch-size", "3", "--threads", "1"])
    assert perf.parse_args(["--stage", "score", *opts.argv()])[0] == perf.BenchOptions(
        pairs=7, batch_size=3, threads=1)
    quick, _ = perf.parse_args(["--quick"])
    assert (quick.pairs, quick.repeats, quick.sweep) == (64, 3, ())


def test_batched_rm_encoding_gives_the_one_at_a_time_ids(tiny_models):
    from mt.modeling import load_tokenizer
    from mt.reward import encode_conversations

    tok = load_tokenizer(str(tiny_models[1]))
    prompts = [as_messages(p) for p in PROMPTS]
    responses = ["3", "", "cba and more", "x" * 40]
    assert encode_conversations(tok, prompts, responses) == [
        encode_conversation(tok, p, r) for p, r in zip(prompts, responses, strict=True)]
    assert encode_conversations(tok, [], []) == []


@pytest.mark.parametrize("name, kind, processes", [
    ("single_gpu", "NO", 1), ("multi_gpu_zero3", "DEEPSPEED", 8), ("multi_node_zero3", "DEEPSPEED", 16)])
def test_accelerate_configs_load(name, kind, processes):
    from accelerate.commands.config.config_args import ClusterConfig

    path = Path(perf.__file__).parent / "accelerate" / f"{name}.yaml"
    cfg = ClusterConfig.from_yaml_file(str(path))
    assert (cfg.distributed_type.value, cfg.num_processes, cfg.mixed_precision) == (kind, processes, "bf16")
    if kind == "DEEPSPEED":
        assert cfg.deepspeed_config["zero_stage"] == 3
