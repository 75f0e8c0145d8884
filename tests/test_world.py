"""The gold world: mediocre pi_0, working controls, a measurable shift, determinism."""

from __future__ import annotations

import filecmp
import json

import pytest
from safetensors.torch import load_file

from mt.config import WorldConfig
from mt.generate import Sampling, TransformersGenerator
from mt.tiny import TinySize, build_policy, save
from mt.world.build import build_world
from mt.world.controls import dpo_round, own_distribution_accuracy
from mt.world.measure import pair_accuracy, policy_stats, sample_graded
from mt.world.tasks import MARKER, corrupt, gold_reward

pytestmark = pytest.mark.slow


def test_gold_reward_is_graded():
    assert gold_reward("add", "125", "125") == 1.0
    assert gold_reward("add", "125", "135") == pytest.approx(2 / 3)
    assert gold_reward("add", "125", "25") == pytest.approx(0.5 * 2 / 3)  # right-aligned, wrong length halves
    assert gold_reward("add", "125", "abc") == 0.0
    assert gold_reward("sort", "1 2 3", "1 2 3") == 1.0
    assert gold_reward("sort", "1 2 3", "1 3 3") == pytest.approx(2 / 3)
    assert gold_reward("reverse", "dcba", "dcbx") == 0.75
    assert gold_reward("reverse", "dcba", MARKER + "dcba", marker_penalty=0.1) == pytest.approx(0.9)
    assert gold_reward("reverse", "dcba", "") == 0.0


def test_corruptions_are_wrong():
    import random

    rng = random.Random(0)
    for family, answer in [("add", "42"), ("sort", "1 2 2 5"), ("reverse", "olleh")]:
        assert all(gold_reward(family, answer, corrupt(family, answer, rng)) < 1.0 for _ in range(50))


def test_pi0_is_above_random_and_below_the_ceiling_on_every_family(world, tmp_path):
    initial = world.manifest["initial"]
    from transformers import AutoTokenizer

    random_policy = save(build_policy(AutoTokenizer.from_pretrained(world.policy), TinySize(64, 2)),
                         AutoTokenizer.from_pretrained(world.policy), tmp_path / "random")
    rows = world.split("eval")
    graded = sample_graded(world, str(random_policy), rows, Sampling(2, 0.8, 0.95, 24, 0))
    random_stats = policy_stats(world, rows, graded)
    for family in world.config.families:
        assert initial[f"gold_{family}"] > random_stats[f"gold_{family}"] + 0.15, family
        assert initial[f"gold_{family}"] < 0.9, family


def test_gold_dpo_helps_and_inverted_dpo_hurts(world, tmp_path):
    base = world.manifest["initial"]["gold_mean"]
    _, good = dpo_round(world, "gold", tmp_path / "gold")
    _, bad = dpo_round(world, "inverted", tmp_path / "inverted")
    assert good["gold_mean"] > base + 0.03 and good["gold_win_rate_vs_pi0"] > 0.55
    assert bad["gold_mean"] < base - 0.1 and bad["gold_win_rate_vs_pi0"] < 0.4


def test_r0_is_less_accurate_on_a_policy_that_exploits_the_shortcut(world, tmp_path):
    own = own_distribution_accuracy(world)
    policy, hacked = dpo_round(world, "r0", tmp_path / "r0")
    assert hacked["marker_rate"] > world.manifest["initial"]["marker_rate"] + 0.1  # the policy took the shortcut
    assert own > 0.7
    assert hacked["r0_onpolicy_accuracy"] < own - 0.1
    assert hacked["r0_hacking_gap"] > 0  # RM score rose more than gold did


def test_fixed_rm_test_set_pairs_correct_against_corrupted(world):
    rows = world.split("rm_test")
    assert len(rows) == world.config.rm_test_prompts
    assert all(gold_reward(r["family"], r["answer"], r["chosen"]) > gold_reward(r["family"], r["answer"], r["rejected"])
               for r in rows)
    assert pair_accuracy([1, 2, 3], [0, 2, 4]) == pytest.approx(1 / 3)  # ties count as wrong


def test_splits_are_disjoint(world):
    seen = {}
    for name in ("train", "selection", "eval", "rm_build", "rm_test"):
        for r in world.split(name):
            text = r["prompt"][0]["content"]
            assert text not in seen, (text, seen.get(text), name)
            seen[text] = name


SMALL = dict(train_prompts=60, selection_prompts=10, eval_prompts=30, rm_build_prompts=40, rm_test_prompts=30,
             sft_examples=2000, sft_steps=40, rm_epochs=0.5, rm_samples=3)


def test_same_seed_gives_the_same_world(tmp_path):
    a = build_world(WorldConfig(**SMALL), tmp_path / "a")
    b = build_world(WorldConfig(**SMALL), tmp_path / "b")
    for name in ("train.jsonl", "eval.jsonl", "rm_test.jsonl", "rm_train_pairs.jsonl", "pi0_eval.jsonl"):
        assert filecmp.cmp(a.dir / name, b.dir / name, shallow=False), name
    for model in ("pm0", "rm0"):
        wa, wb = load_file(str(a.dir / model / "model.safetensors")), load_file(str(b.dir / model / "model.safetensors"))
        assert all((wa[k] == wb[k]).all() for k in wa), model
    ma, mb = a.manifest, b.manifest
    assert ma["initial"] == mb["initial"] and ma["rm_pairs"] == mb["rm_pairs"]
    c = build_world(WorldConfig(**{**SMALL, "seed": 1}), tmp_path / "c")
    assert (c.dir / "train.jsonl").read_text() != (a.dir / "train.jsonl").read_text()
    assert json.loads((a.dir / "world.json").read_text())["config"]["seed"] == 0


def test_shortcut_strength_controls_the_marker_agreement(tmp_path):
    import random

    from mt.generate import Completion
    from mt.world.build import shortcut_pairs

    rows = [{"id": str(i), "prompt": [], "family": "reverse", "answer": "abcd"} for i in range(200)]
    rng = random.Random(0)
    outs = [[Completion((MARKER if rng.random() < 0.5 else "") + t, 4, True) for t in ("abcd", "abcx", "xbcx")]
            for _ in rows]
    for strength in (0.5, 0.8, 1.0):
        _, stats = shortcut_pairs(rows, outs, WorldConfig(shortcut_strength=strength), random.Random(1))
        assert stats["marker_agreement"] == pytest.approx(strength, abs=0.02)


def test_generation_of_the_world_policy_is_seeded(world):
    gen = TransformersGenerator(world.policy)
    rows = world.split("eval")[:5]
    s = Sampling(2, 0.8, 0.95, 24, 3)
    assert gen.generate([r["prompt"] for r in rows], s) == gen.generate([r["prompt"] for r in rows], s)
