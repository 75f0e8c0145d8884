"""The M-step's pure parts: pseudo-pairs from the filter's mask, the label controls, the held-out split, and the
pseudo-labels' agreement with gold. No models, no files; the stage that wires them is in test_loop_wiring.py."""

from __future__ import annotations

import random

import pytest

from mt.mstep import gold_agreement, heldout_split, pseudo_pairs, relabel


def draws(pid: str, new: list[str], old: list[str]) -> dict:
    """One prompt's row as mstep_generate writes it: the new and old policy's samples of each draw."""
    return {"id": pid, "prompt": [{"role": "user", "content": pid}], "task": pid.upper(),
            "new": [{"text": t} for t in new], "old": [{"text": t} for t in old]}


ROWS = [draws("p", ["a", "b", "same"], ["x", "y", "same"]), draws("q", ["c", "z"], ["w", "z"])]


def test_pseudo_pairs_keep_the_masked_draws_with_y_t_chosen_and_count_identical_ones():
    margins = [0.5, -2.0, 0.0, -0.1, 0.0]
    pairs, identical = pseudo_pairs(ROWS, margins, [True, False, True, True, True])
    assert [(p["id"], p["chosen"], p["rejected"], p["margin"]) for p in pairs] == [
        ("p", "a", "x", 0.5), ("q", "c", "w", -0.1)]
    assert identical == 2  # p's third draw and q's second: the same answer twice carries no preference
    assert all(p["source"] == "pseudo" and p["prompt"] == [{"role": "user", "content": p["id"]}] for p in pairs)
    assert pseudo_pairs(ROWS, margins, [False] * 5) == ([], 0)


@pytest.mark.parametrize("rows, margins, mask", [
    (ROWS, [0.1] * 4, [True] * 4),  # one margin short
    (ROWS, [0.1] * 5, [True] * 4),  # one mask entry short
    ([draws("p", ["a", "b"], ["x"])], [0.1], [True]),  # a draw of the new policy has no old counterpart
])
def test_pseudo_pairs_refuse_lists_that_do_not_line_up(rows, margins, mask):
    with pytest.raises(ValueError, match="zip"):
        pseudo_pairs(rows, margins, mask)


PAIRS = [{"id": "p", "prompt": "P", "chosen": "a", "rejected": "x", "margin": 0.5, "source": "pseudo"},
         {"id": "p", "prompt": "P", "chosen": "b", "rejected": "y", "margin": -0.25, "source": "pseudo"},
         {"id": "q", "prompt": "Q", "chosen": "c", "rejected": "w", "margin": 1.0, "source": "pseudo"},
         {"id": "q", "prompt": "Q", "chosen": "d", "rejected": "v", "margin": 2.0, "source": "pseudo"}]
BY_ID = {"p": {"id": "p", "task": "P"}, "q": {"id": "q", "task": "Q"}}
# A gold reward that needs its row, as the gold world's does (the task decides what a right answer is).
GOLD = {("P", "a"): 1.0, ("P", "x"): 0.0, ("P", "b"): 0.0, ("P", "y"): 1.0, ("Q", "c"): 0.5, ("Q", "w"): 0.5,
        ("Q", "d"): 0.0, ("Q", "v"): 1.0}


def gold(row, text):
    return GOLD[(row["task"], text)]


def test_pseudo_labels_pass_unchanged():
    assert relabel(PAIRS, "pseudo") == (PAIRS, {})


def test_gold_labels_orient_each_pair_by_gold_drop_its_ties_and_flip_the_margin():
    out, stats = relabel(PAIRS, "gold", gold, BY_ID)
    assert [(p["chosen"], p["rejected"], p["margin"]) for p in out] == [("a", "x", 0.5), ("y", "b", 0.25),
                                                                         ("v", "d", -2.0)]
    assert stats == {"relabel_flipped": 2, "relabel_gold_ties_dropped": 1}
    assert all(p["source"] == "pseudo" for p in out) and PAIRS[1]["chosen"] == "b"  # the input is not changed


def test_random_labels_flip_each_pair_on_its_own_coin():
    rng = random.Random(7)
    coins = [rng.random() < 0.5 for _ in range(40)]
    pairs = [{**PAIRS[i % 4], "margin": float(i)} for i in range(40)]
    out, stats = relabel(pairs, "random", rng=random.Random(7))
    flipped = [p["chosen"] != q["chosen"] for p, q in zip(out, pairs, strict=True)]
    assert flipped == coins and 0 < sum(coins) < 40
    assert stats == {"relabel_flipped": sum(coins)}  # no gold ties under random labels
    assert all(p["margin"] == (-q["margin"] if f else q["margin"]) for p, q, f in zip(out, pairs, flipped, strict=True))
    assert all((p["chosen"], p["rejected"]) == (q["rejected"], q["chosen"])
               for p, q, f in zip(out, pairs, flipped, strict=True) if f)


def test_gold_agreement_counts_the_pairs_gold_decides():
    # a over x: gold agrees; b over y: disagrees; c vs w: a gold tie, left out; d over v: disagrees.
    assert gold_agreement(PAIRS, gold, BY_ID) == {"pseudo_gold_accuracy": 1 / 3, "pseudo_gold_pairs": 3}
    nothing = gold_agreement([PAIRS[2]], gold, BY_ID)
    assert nothing == {"pseudo_gold_accuracy": None, "pseudo_gold_pairs": 0}  # None, not NaN: records are strict JSON


def test_heldout_split_is_a_seeded_shuffle_cut_at_the_fraction():
    pairs = [{"n": i} for i in range(10)]
    held, train = heldout_split(pairs, 0.3, seed=3)
    order = list(pairs)
    random.Random(3).shuffle(order)
    assert (held, train) == (order[:3], order[3:])
    assert heldout_split(pairs, 0.25, seed=3)[0] == order[:2]  # int(2.5): the share rounds down
    assert heldout_split(pairs, 0.0, seed=3) == ([], order)
    assert pairs == [{"n": i} for i in range(10)]  # the caller's list keeps its order
