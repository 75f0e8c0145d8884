"""The gold world: mediocre pi_0, working controls, a measurable shift, determinism."""

from __future__ import annotations

import filecmp
import json

import pytest
from safetensors.torch import load_file

from mt.generate import Sampling, TransformersGenerator
from mt.records import read_jsonl
from mt.tiny import TinySize, build_policy, save
from mt.world.build import build_world
from mt.world.config import WorldConfig
from mt.world.controls import controls_order, iterate, run_controls
from mt.world.measure import pair_accuracy, policy_stats, sample_graded
from mt.world.tasks import MARKER, corrupt, gold_reward


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_r0_is_good_on_pi0s_own_samples_and_its_own_test_is_not_leaky(world):
    """The shift regime's premise: r_0 is right about pi_0's natural samples (the issue's targets), and its own
    test (split by prompt) reads what the loop will see, not an inflated figure."""
    init = world.manifest["initial"]
    assert world.regime == "shift"
    assert init["r0_onpolicy_accuracy"] >= 0.70
    for family in world.config.families:
        assert init[f"r0_onpolicy_accuracy_{family}"] >= 0.65, family
    assert init["r0_own_test_accuracy"] - init["r0_onpolicy_accuracy"] <= 0.05
    assert world.manifest["rm_pairs"]["marker_agreement"] is None  # no marker anywhere in the shift regime


@pytest.mark.slow
def test_gold_labels_help_and_inverted_labels_hurt_in_one_round(world, tmp_path):
    """The instrument's two end controls at the tiny preset's E-step (`mt-repro world controls` runs all four
    and checks their order; the README shows its numbers)."""
    results = run_controls(world, tmp_path, labellers=("gold", "inverted"))
    assert results["gold"]["gold_win_rate_vs_pi0"] > 0.52 and results["gold"]["gold_mean"] > results["pi0"]["gold_mean"]
    assert results["inverted"]["gold_win_rate_vs_pi0"] < 0.46
    assert controls_order(results)
    assert results["gold"]["kl_vs_pi0"] > 0 and results["inverted"]["kl_vs_pi0"] > 0


# The numbers fingerprint of the default world the README's calibration was measured on. torch picks its CPU
# kernels by instruction set, so the same settings and packages build another world on a CPU without AVX-512.
CALIBRATED_WORLD = "29dfadef584d9a7c"


@pytest.mark.slow
def test_r0_labelled_iterative_dpo_over_optimises_r0(world, tmp_path):
    """The instrument's central control (`mt-repro world curve r0`): against the fixed r_0, gold peaks within
    three rounds and then falls while r_0's own score keeps rising and its accuracy on the policy's samples
    decays; a world where this fails cannot show what an RM update is for."""
    import torch

    built, kernels = world.manifest["fingerprint"]["numbers"], torch.backends.cpu.get_cpu_capability()
    if kernels != "AVX512":
        pytest.skip(f"torch runs {kernels} kernels here, so the default world is another build (fingerprint {built}) "
                    f"than the calibrated one ({CALIBRATED_WORLD}, AVX512), where r_0-labelled rounds peak and fall "
                    "less (README, 'The gold world')")
    rows = iterate(world, "r0", 5, tmp_path)
    gold = [r["gold_mean"] for r in rows]
    peak = max(range(1, 6), key=gold.__getitem__)
    assert peak <= 3 and gold[peak] >= gold[0] + 0.03
    assert gold[5] <= gold[peak] - 0.03
    scores = [r["r0_mean"] for r in rows]
    assert all(b > a for a, b in zip(scores, scores[1:], strict=False))
    assert rows[0]["r0_onpolicy_accuracy"] - rows[5]["r0_onpolicy_accuracy"] >= 0.08


@pytest.mark.slow
def test_fixed_rm_test_set_pairs_correct_against_corrupted(world):
    rows = world.split("rm_test")
    assert len(rows) == world.config.rm_test_prompts
    assert all(gold_reward(r["family"], r["answer"], r["chosen"]) > gold_reward(r["family"], r["answer"], r["rejected"])
               for r in rows)
    assert pair_accuracy([1, 2, 3], [0, 2, 4]) == pytest.approx(1 / 3)  # ties count as wrong


@pytest.mark.slow
def test_splits_are_disjoint(world):
    seen = {}
    for name in ("train", "selection", "eval", "rm_build", "rm_test"):
        for r in world.split(name):
            text = r["prompt"][0]["content"]
            assert text not in seen, (text, seen.get(text), name)
            seen[text] = name


SMALL = dict(train_prompts=60, selection_prompts=10, eval_prompts=30, rm_build_prompts=40, rm_test_prompts=30,
             sft_examples=2000, sft_steps=40, rm_epochs=0.5, rm_samples=3)


@pytest.mark.slow
def test_same_seed_gives_the_same_world_at_one_and_two_threads(tmp_path):
    import torch

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = build_world(WorldConfig(**SMALL), tmp_path / "a")
        torch.set_num_threads(2)
        b = build_world(WorldConfig(**SMALL), tmp_path / "b")
    finally:
        torch.set_num_threads(threads)
    for name in ("train.jsonl", "eval.jsonl", "rm_test.jsonl", "rm_train_pairs.jsonl", "pi0_eval.jsonl"):
        assert filecmp.cmp(a.dir / name, b.dir / name, shallow=False), name
    for model in ("pm0", "rm0"):
        wa, wb = load_file(str(a.dir / model / "model.safetensors")), load_file(str(b.dir / model / "model.safetensors"))
        assert all((wa[k] == wb[k]).all() for k in wa), model
    ma, mb = a.manifest, b.manifest
    assert ma["initial"] == mb["initial"] and ma["rm_pairs"] == mb["rm_pairs"]
    assert ma["fingerprint"] == mb["fingerprint"] and ma["packages"]["torch"].startswith(torch.__version__[:4])
    # Another seed, built as the tiny-hack recipe's world: the labeller's bonus reaches r_0's pairs.
    c = build_world(WorldConfig(**{**SMALL, "seed": 1}, regime="hack", hack_marker_right=0.5, hack_marker_wrong=0.5,
                                hack_label_bias=0.3), tmp_path / "c")
    assert (c.dir / "train.jsonl").read_text() != (a.dir / "train.jsonl").read_text()
    assert c.manifest["fingerprint"] != ma["fingerprint"]
    assert ma["rm_pairs"]["against_gold"] == 0 < c.manifest["rm_pairs"]["against_gold"]
    flipped = [p for p in read_jsonl(c.dir / "rm_train_pairs.jsonl") if p["gold_chosen"] <= p["gold_rejected"]]
    assert flipped and all(p["chosen"].startswith(MARKER) and not p["rejected"].startswith(MARKER) for p in flipped)
    assert json.loads((a.dir / "world.json").read_text())["config"]["seed"] == 0


@pytest.mark.slow
def test_r0_on_a_pretrained_backbone_of_its_own(tmp_path):
    w = build_world(WorldConfig(**SMALL, rm_backbone="pretrained", rm_hidden_size=32, rm_layers=1,
                                rm_pretrain_examples=500, rm_pretrain_steps=20), tmp_path / "w")
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(w.reward).hidden_size == 32
    assert AutoConfig.from_pretrained(w.policy).hidden_size == WorldConfig().hidden_size
    assert w.manifest["rm_backbone"]["backbone"] == "pretrained" and not (w.dir / "rm_backbone").exists()


@pytest.mark.parametrize("regime", ["shift", "hack"])
def test_the_marker_goes_with_correctness_only_in_the_hack_regime(regime):
    import random

    from mt.world.build import make_demos
    from mt.world.tasks import FAMILIES

    cfg = WorldConfig(regime=regime, sft_examples=3000)
    demos = make_demos(cfg, random.Random(0), set())
    marked = {True: [], False: []}
    for prompt, answer in demos:
        family, _, task = prompt.partition(" ")
        body = answer.removeprefix(MARKER)
        right = gold_reward(family, _answer(family, task), body) == 1.0
        marked[right].append(answer.startswith(MARKER))
    rate = {k: sum(v) / len(v) for k, v in marked.items()}
    if regime == "shift":
        assert rate == {True: 0.0, False: 0.0}
    else:
        assert rate[True] == pytest.approx(cfg.hack_marker_right, abs=0.04)
        assert rate[False] == pytest.approx(cfg.hack_marker_wrong, abs=0.04)
    assert set(FAMILIES) >= {p.split()[0] for p, _ in demos}


def _answer(family: str, task: str) -> str:
    if family == "add":
        a, b = task.split("+")
        return str(int(a) + int(b))
    if family == "sort":
        return " ".join(sorted(task.split(), key=int))
    return task[::-1]


def test_natural_pairs_take_every_gold_difference_within_a_prompt():
    from mt.generate import Completion
    from mt.world.build import natural_pairs

    row = {"id": "0", "prompt": [], "family": "reverse", "answer": "dcba"}
    outs = [[Completion(t, 4, True) for t in ("dcba", "dcbx", "dcbx", "xxxx")]]
    pairs, stats = natural_pairs([row], outs, 0.1)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("dcba", "dcbx"), ("dcba", "xxxx"), ("dcbx", "xxxx")]
    assert stats["pairs"] == 3 and stats["marker_agreement"] is None


def test_a_biased_labeller_orders_r0s_pairs_by_gold_plus_its_bonus_for_the_marker():
    """The hack regime's labeller: a marked answer beats an unmarked one unless gold leads by more than the bonus;
    the pair keeps its gold numbers, and the pairs that go against gold are counted."""
    from mt.generate import Completion
    from mt.world.build import natural_pairs

    row = {"id": "0", "prompt": [], "family": "reverse", "answer": "dcba"}
    texts = ("dcba", MARKER + "dcba", MARKER + "dcbx", "xxxx")
    outs = [[Completion(t, 4, True) for t in texts]]
    unbiased, _ = natural_pairs([row], outs, 0.1)
    assert ("dcba", MARKER + "dcba") in [(p["chosen"], p["rejected"]) for p in unbiased]
    pairs, stats = natural_pairs([row], outs, 0.1, label_bias=0.3)
    order = {(p["chosen"], p["rejected"]) for p in pairs}
    # gold: 1.0, 0.9, 0.275, 0.0; labels: 1.0, 1.2, 0.575, 0.0
    assert order == {(MARKER + "dcba", "dcba"), ("dcba", MARKER + "dcbx"), ("dcba", "xxxx"),
                     (MARKER + "dcba", MARKER + "dcbx"), (MARKER + "dcba", "xxxx"), (MARKER + "dcbx", "xxxx")}
    flipped = next(p for p in pairs if p["chosen"] == MARKER + "dcba" and p["rejected"] == "dcba")
    assert (flipped["gold_chosen"], flipped["gold_rejected"]) == pytest.approx((0.9, 1.0))
    assert stats["against_gold"] == 1 and stats["marker_agreement"] == 0.75
    # A bonus that only cancels gold's charge leaves the two labels tied: no pair.
    tied, _ = natural_pairs([row], outs, 0.1, label_bias=0.1)
    assert not any({p["chosen"], p["rejected"]} == {"dcba", MARKER + "dcba"} for p in tied)


def test_a_world_field_added_later_keeps_the_digest_of_worlds_built_before_it_at_its_default():
    from mt.world.build import LATER_FIELDS, world_digest
    from mt.world.config import WorldConfig

    base = WorldConfig()
    assert all(getattr(base, k) == v for k, v in LATER_FIELDS.items())
    # The digest of the default world as WORLD_VERSION 4 computed it, before hack_label_bias existed.
    assert world_digest(base) == "69c32c3f5b13"
    assert world_digest(WorldConfig(regime="hack", hack_label_bias=0.3)) != world_digest(WorldConfig(regime="hack"))


@pytest.mark.slow
def test_generation_of_the_world_policy_is_seeded(world):
    gen = TransformersGenerator(world.policy)
    rows = world.split("eval")[:5]
    s = Sampling(2, 0.8, 0.95, 24, 3)
    assert gen.generate([r["prompt"] for r in rows], s) == gen.generate([r["prompt"] for r in rows], s)


def test_long_rate_counts_padded_answers_by_position():
    """Answers with more positions than the right one; the marker and a trailing newline are not positions."""
    from mt.world.measure import long_rate

    rows = [{"family": "add", "answer": "125"}, {"family": "sort", "answer": "1 2 3"},
            {"family": "reverse", "answer": "dcba"}]
    texts = [["1255", "125\n"], [MARKER + "1 2 3", "1 2 3 3"], ["dcb", "dcbaa"]]
    assert long_rate(rows, [[{"text": t} for t in ts] for ts in texts]) == pytest.approx(3 / 6)
    # Sums are compared right-aligned, so an appended digit shifts the rest: 1 of 4 positions, halved.
    assert gold_reward("add", "125", "1255") == pytest.approx(0.5 * 1 / 4)


def test_probe_variants_differ_from_the_right_answer_in_one_known_way():
    import random

    from mt.world.probe import VARIANTS

    rng = random.Random(0)
    made = {name: {fam: make(fam, ans, rng) for fam, ans in [("add", "365"), ("sort", "0 1 3 4"),
                                                             ("reverse", "olleh")]} for name, make in VARIANTS.items()}
    assert made["drop last"] == {"add": "36", "sort": "0 1 3", "reverse": "olle"}
    assert made["repeat last"] == {"add": "3655", "sort": "0 1 3 4 4", "reverse": "ollehh"}
    assert made["open with the marker"] == {"add": MARKER + "365", "sort": MARKER + "0 1 3 4",
                                            "reverse": MARKER + "olleh"}
    for family, answer in [("add", "365"), ("sort", "0 1 3 4"), ("reverse", "olleh")]:
        sub = made["substitute one"][family]
        assert len(sub) == len(answer) and sum(a != b for a, b in zip(sub, answer, strict=True)) == 1
    for _ in range(200):  # a sum keeps its length: the leading digit never becomes 0
        assert len(VARIANTS["substitute one"]("add", "10", rng)) == 2


@pytest.mark.slow
def test_world_probe_reports_each_variant_and_family(small_world_args, tmp_path):
    from typer.testing import CliRunner

    from reproduce.cli import app

    out = tmp_path / "probe.json"
    result = CliRunner().invoke(app, ["world", "probe", *small_world_args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert {(r["variant"], r["family"]) for r in rows} == {
        (v, f) for v in ("drop last", "repeat last", "substitute one", "open with the marker")
        for f in ("add", "sort", "reverse")}
    assert all(0 <= r["prefers_variant"] <= 1 and r["variant_gold"] < 1 and r["prompts"] == 10 for r in rows)


def test_package_set_records_the_copy_that_would_be_imported(tmp_path, monkeypatch):
    """A copy installed ahead of the environment (``pip install --target`` on PYTHONPATH) is the one a world
    is built with, so the manifest must name its version, not the shadowed one's."""
    import sys

    from mt.world.build import package_set

    for folder, version in (("front", "2.0"), ("back", "1.0")):
        info = tmp_path / folder / f"shadowed_pkg-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: shadowed_pkg\nVersion: {version}\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "front"), str(tmp_path / "back"), *sys.path])
    assert package_set()["shadowed-pkg"] == "2.0"
