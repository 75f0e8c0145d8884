"""M-step: the reward model learns from the policy's progress.

Three stages. ``mstep_generate``: y_t ~ pi_t and y_{t-1} ~ pi_{t-1} on the RM part, on common random
numbers. ``mstep_filter``: the pseudo-label "y_t beats y_{t-1}", its margin under the old RM r_{t-1},
the variance-adaptive filter (``mt.filter``), a held-out share of the kept pairs. ``mstep_train``:
Bradley-Terry training of r_t from r_{t-1} (or from r_0) on what the filter kept.

``mstep.labels`` swaps the pseudo-label for a control on the very same pairs: ``gold`` (an oracle,
when the environment has a gold reward) or ``random``. What an M-step could add at most, and
what no information adds, bound what the pseudo-label adds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .engine import Models
from .filter import epsilon, filter_stats, keep_mask
from .records import InputError, read_json, read_jsonl, write_json, write_jsonl
from .rundir import StageContext
from .seam.metric import spearman

if TYPE_CHECKING:
    from .method import Run


# ---------------------------------------------------------------- pure parts
def pseudo_pairs(rows: Sequence[dict], margins: Sequence[float], mask: Sequence[bool]) -> tuple[list[dict], int]:
    """Kept (y_t, y_{t-1}) draws as pairs with y_t chosen; identical answers carry no preference and are counted.

    ``rows`` hold, per prompt, the ``new`` and ``old`` samples of each draw; ``margins`` and ``mask`` run over
    the draws in that order.
    """
    flat = [(r, a["text"], b["text"]) for r in rows for a, b in zip(r["new"], r["old"], strict=True)]
    pairs, identical = [], 0
    for (r, a, b), d, keep in zip(flat, margins, mask, strict=True):
        if not keep:
            continue
        if a == b:
            identical += 1
            continue
        pairs.append({"id": r["id"], "prompt": r["prompt"], "chosen": a, "rejected": b, "margin": d,
                      "source": "pseudo"})
    return pairs, identical


def relabel(pairs: list[dict], labels: str, gold=None, rows_by_id: dict | None = None,
            rng: random.Random | None = None) -> tuple[list[dict], dict[str, Any]]:
    """The same pairs under another label: ``pseudo`` (as is), ``gold`` (the gold-preferred side chosen,
    gold ties dropped) or ``random`` (each pair's orientation a coin flip)."""
    if labels == "pseudo":
        return pairs, {}
    out, ties, flipped = [], 0, 0
    for p in pairs:
        if labels == "gold":
            row = rows_by_id[p["id"]]
            g_new, g_old = gold(row, p["chosen"]), gold(row, p["rejected"])
            if g_new == g_old:
                ties += 1
                continue
            swap = g_old > g_new
        else:
            swap = rng.random() < 0.5
        flipped += swap
        out.append({**p, "chosen": p["rejected"], "rejected": p["chosen"], "margin": -p["margin"]} if swap else p)
    return out, {"relabel_flipped": flipped, **({"relabel_gold_ties_dropped": ties} if labels == "gold" else {})}


def heldout_split(pairs: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(held-out, train): a seeded shuffle, then the first ``fraction`` held out to measure the update."""
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)
    n_held = int(len(shuffled) * fraction)
    return shuffled[:n_held], shuffled[n_held:]


def gold_agreement(pairs: Sequence[dict], gold, rows_by_id: dict) -> dict[str, float | int]:
    """How often gold agrees with a pair's chosen side (gold ties left out): the pseudo-labels' quality."""
    agree = differ = 0
    for p in pairs:
        row = rows_by_id[p["id"]]
        g_c, g_r = gold(row, p["chosen"]), gold(row, p["rejected"])
        if g_c != g_r:
            differ += 1
            agree += g_c > g_r
    return {"pseudo_gold_accuracy": agree / differ if differ else float("nan"), "pseudo_gold_pairs": differ}


# ---------------------------------------------------------------- the step
def mstep(run: Run, t: int, old: Models, new_policy: str, prompts: list[dict], estep_pairs: list[dict]) -> str:
    """Mutual-Taught's M-step of iteration t; returns the path of r_t."""
    cfg, engine = run.cfg, run.engine
    n = cfg.mstep.samples_per_prompt

    def generate(ctx: StageContext):
        sampling = engine.sampling(n, ctx.seed)
        new, s_new = engine.generate(new_policy, prompts, sampling, f"iter {t} M-step: sampling pi_{t}")
        old_, s_old = engine.generate(old.policy, prompts, sampling, f"iter {t} M-step: sampling pi_{t - 1}")
        rows = [{**p, "new": a, "old": b} for p, a, b in zip(prompts, new, old_, strict=True)]
        write_jsonl(ctx.dir / "samples.jsonl", rows)
        return {"samples": ctx.rel(ctx.dir / "samples.jsonl")}, {
            "prompts": len(rows), "completions": s_new["completions"] + s_old["completions"],
            "new_tokens": s_new["new_tokens"] + s_old["new_tokens"]}

    samples = engine.stage(t, "mstep_generate", generate)["samples"]

    def filter_(ctx: StageContext):
        rows = read_jsonl(engine.rd.path(samples))
        flat = [(r["prompt"], a["text"], b["text"]) for r in rows for a, b in zip(r["new"], r["old"], strict=True)]
        prompts_ = [p for p, _, _ in flat]
        r_new = engine.score(old.reward, prompts_, [a for _, a, _ in flat], f"iter {t} M-step: scoring y_t")
        r_old = engine.score(old.reward, prompts_, [b for _, _, b in flat], f"iter {t} M-step: scoring y_t-1")
        margins = [a - b for a, b in zip(r_new, r_old, strict=True)]
        eps = epsilon(r_old, margins, cfg.mstep.eps)
        mask = keep_mask(margins, eps) if cfg.mstep.filter else [True] * len(margins)
        pairs, identical = pseudo_pairs(rows, margins, mask)
        by_id = {r["id"]: r for r in rows}
        if cfg.mstep.labels == "gold" and run.env.gold is None:
            raise InputError("mstep.labels=gold needs an environment with a gold reward (the gold world); "
                             "use pseudo or random")
        extra = gold_agreement(pairs, run.env.gold, by_id) if run.env.gold is not None else {}
        pairs, relabelled = relabel(pairs, cfg.mstep.labels, run.env.gold, by_id, random.Random(ctx.seed + 1))
        heldout, train_rows = heldout_split(pairs, cfg.mstep.heldout_fraction, ctx.seed)
        if cfg.mstep.include_estep_pairs:
            train_rows += [{"id": p["id"], "prompt": p["prompt"], "chosen": p["chosen"],
                            "rejected": p["rejected"], "source": "estep"} for p in estep_pairs]
        write_jsonl(ctx.dir / "train_pairs.jsonl", train_rows)
        write_jsonl(ctx.dir / "heldout_pairs.jsonl", heldout)
        write_json(ctx.dir / "new_draw_scores.json", r_new)  # r_{t-1} on y_t, to see how r_t re-ranks them
        stats = filter_stats(margins, mask, eps)
        stats.update({"eps_definition": cfg.mstep.eps, "filter_enabled": cfg.mstep.filter,
                      "pseudo_pairs": len(margins), "pseudo_identical_skipped": identical,
                      "rm_train_pairs": len(train_rows), "rm_heldout_pairs": len(heldout),
                      "pseudo_agreement_old_rm": sum(d > 0 for d in margins) / max(1, len(margins)),
                      **({"mstep_labels": cfg.mstep.labels} if cfg.mstep.labels != "pseudo" else {}),
                      **relabelled, **extra})
        return {"train": ctx.rel(ctx.dir / "train_pairs.jsonl"), "heldout": ctx.rel(ctx.dir / "heldout_pairs.jsonl"),
                "new_draw_scores": ctx.rel(ctx.dir / "new_draw_scores.json")}, stats

    paths = engine.stage(t, "mstep_filter", filter_)

    def train(ctx: StageContext):
        rows = read_jsonl(engine.rd.path(paths["train"]))
        init = old.reward if cfg.mstep.init == "previous" else run.initial.reward
        out, metrics = engine.train_reward(init, rows, ctx.dir, ctx.seed)
        heldout = read_jsonl(engine.rd.path(paths["heldout"]))
        if heldout:
            prompts_ = [h["prompt"] for h in heldout]
            for label, path in (("before", old.reward), ("after", str(out))):
                chosen = engine.score(path, prompts_, [h["chosen"] for h in heldout], f"iter {t} M-step: held-out")
                rejected = engine.score(path, prompts_, [h["rejected"] for h in heldout], f"iter {t} M-step: held-out")
                metrics[f"rm_heldout_accuracy_{label}"] = sum(
                    c > r for c, r in zip(chosen, rejected, strict=True)) / len(heldout)
        # How far the update re-ranks the new policy's own answers: Spearman of r_{t-1} and r_t on the y_t draws.
        rows = read_jsonl(engine.rd.path(samples))
        draws = [(r["prompt"], a["text"]) for r in rows for a in r["new"]]
        after = engine.score(str(out), [p for p, _ in draws], [y for _, y in draws], f"iter {t} RM re-ranking")
        metrics["rm_rank_correlation_prev"] = spearman(read_json(engine.rd.path(paths["new_draw_scores"])), after)
        metrics["rm_init"] = cfg.mstep.init
        return {"reward": ctx.rel(out)}, metrics

    return engine.stage(t, "mstep_train", train)["reward"]
