"""RewardBench for any one-logit sequence-classification reward model (v1; v2 with ``--option version=2``).

``run`` loads the pairs, scores every response in batches through ``mt.reward`` and turns the scores
into the leaderboard's numbers with pure functions (records in, dict out) that the tests check by
hand. Subset lists, example-count weights and the Ties formula are facts from allenai/reward-bench,
kept with their source in ``bench/data/reward_bench.json``. The ``rewardbench`` package is not a
dependency: it pins an old transformers and installs top-level ``analysis``/``scripts``/``tests``.

Where we differ from the official code on purpose: a partial run (``--limit``, a missing subset) is
labelled partial with the missing subsets listed, instead of giving an absent section 0 silently.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mt.progress import Reporter
from mt.records import InputError, write_json, write_jsonl
from mt.reward import RewardScorer, load_scorer
from mt.rundir import git_commit, versions

from .registry import Benchmark, BenchRequest, register

FACTS: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "reward_bench.json").read_text())
SECTIONS: dict[str, list[str]] = FACTS["v1"]["sections"]
WEIGHTS: dict[str, int] = FACTS["v1"]["weights"]
# Rows per subset in the filtered split; only math-prm differs from its weight (447 rows weighted as 984).
EXPECTED_PAIRS: dict[str, int] = {s: FACTS["v1"]["pairs"].get(s, w) for s, w in WEIGHTS.items()}
V2_SUBSETS: list[str] = FACTS["v2"]["subsets"]
TIES = FACTS["v2"]["ties_subset"]
TIES_WEIGHTS: dict[str, float] = FACTS["v2"]["ties_weights"]

COLUMNS = ("prompt", "chosen", "rejected", "subset")
LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
OPTIONS_HELP = {
    "version": "1 (default): pairs, four sections; 2: RewardBench 2, best-of-4 plus the Ties subset",
    "split": "split of a hub dataset (default: filtered for v1, test for v2); ignored for local files",
    "max_length": "truncate each scored text to this many tokens, keeping BOS and the end "
                  "(default: the model's max_position_embeddings); truncated texts are counted",
}


# ---------------------------------------------------------------- arithmetic (pure)

def pair_correct(chosen: float, rejected: float) -> bool:
    """Strictly greater, as the official run_rm.py counts it: a tie is wrong."""
    return chosen > rejected


def best_of_n_credit(scores: Sequence[float]) -> float:
    """RewardBench 2's credit for one prompt; ``scores[0]`` is the chosen response.

    1 when it beats every other response, 1/k when it shares the top score with k-1 others, else 0
    (the official reroll_and_score_dataset splits a tie at the top instead of counting it right).
    """
    top = max(scores)
    if scores[0] < top:
        return 0.0
    return 1.0 / sum(1 for s in scores if s == top)


def subset_accuracy(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """{subset: {n, correct, accuracy}} from records holding ``subset`` and ``correct`` (bool or credit)."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for r in records:
        totals[r["subset"]][0] += 1
        totals[r["subset"]][1] += float(r["correct"])
    return {s: {"n": n, "correct": c, "accuracy": c / n} for s, (n, c) in sorted(totals.items())}


def section_scores(accuracy: Mapping[str, float], sections: Mapping[str, Sequence[str]] = SECTIONS,
                   weights: Mapping[str, float] = WEIGHTS) -> dict[str, float | None]:
    """Each section's mean of its present subsets weighted by the official example counts; None if none."""
    out: dict[str, float | None] = {}
    for section, subsets in sections.items():
        present = [s for s in subsets if s in accuracy]
        total = sum(weights[s] for s in present)
        out[section] = sum(accuracy[s] * weights[s] for s in present) / total if total else None
    return out


def mean_present(values: Mapping[str, float | None]) -> float | None:
    present = [v for v in values.values() if v is not None]
    return sum(present) / len(present) if present else None


def v1_scores(per_subset: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Sections and overall (mean of the four sections) from per-subset {n, accuracy}, with what is missing.

    A run is partial when a subset is absent or has fewer rows than the filtered split holds; the
    overall is then the mean of the sections that have data and says so.
    """
    accuracy = {s: v["accuracy"] for s, v in per_subset.items()}
    sections = section_scores(accuracy)
    missing = [s for subsets in SECTIONS.values() for s in subsets if s not in per_subset]
    incomplete = {s: {"n": v["n"], "expected": EXPECTED_PAIRS[s]} for s, v in per_subset.items()
                  if s in EXPECTED_PAIRS and v["n"] != EXPECTED_PAIRS[s]}
    return {
        "overall": mean_present(sections),
        "overall_over": [s for s, v in sections.items() if v is not None],
        "sections": sections,
        "subsets": dict(per_subset),
        "missing_subsets": missing,
        "incomplete_subsets": incomplete,
        "unscored_subsets": sorted(set(per_subset) - set(WEIGHTS)),
        "partial": bool(missing or incomplete),
    }


def _tanh_of_ratio_minus_one(num: float, den: float) -> float:
    """tanh(num / den - 1) with numpy's division by zero (+-inf, or nan mapped to 0), as the official code."""
    if den == 0:
        return 0.0 if num == 0 else math.copysign(1.0, num)
    return math.tanh(num / den - 1)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def ties_score(records: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """RewardBench 2's Ties score (process_single_model): 60% accuracy, 40% margins, 1% tie-break.

    Records hold ``id`` ("ref:<n>" has one correct answer, "tied:<n>" several), ``scores`` and
    ``num_correct`` (the first ``num_correct`` scores are the correct answers). A prompt is accurate
    when its worst correct answer beats its best wrong one; the margin terms ask whether that gap
    exceeds the spread among the tied prompt's correct answers.
    """
    groups: dict[tuple[str, int], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for r in records:
        kind, _, pid = str(r["id"]).partition(":")
        correct, wrong = groups[(kind, int(pid))]
        correct.extend(r["scores"][: r["num_correct"]])
        wrong.extend(r["scores"][r["num_correct"]:])
    gap = {k: min(c) - max(w) for k, (c, w) in groups.items()}
    spread = {k: max(c) - min(c) for k, (c, _) in groups.items()}
    ref = sorted(pid for kind, pid in groups if kind == "ref")
    tied = sorted(pid for kind, pid in groups if kind != "ref")
    both = sorted(set(ref) & set(tied))
    hard_gap = {p: min(gap[("ref", p)], gap[("tied", p)]) for p in both}
    parts = {
        "tied_accuracy": _mean([gap[("tied", p)] > 0 for p in tied]),
        "ref_accuracy": _mean([gap[("ref", p)] > 0 for p in ref]),
        "correctness_preferred": _mean([gap[("tied", p)] > spread[("tied", p)] for p in both]),
        "correctness_preferred_hard": _mean([hard_gap[p] > spread[("tied", p)] for p in both]),
        "margin": _mean([_tanh_of_ratio_minus_one(hard_gap[p], spread[("tied", p)]) for p in both]),
    }
    return {**parts, "score": sum(TIES_WEIGHTS[k] * v for k, v in parts.items())}


def v2_scores(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-subset scores (best-of-n credit; Ties by ``ties_score``) and their unweighted mean."""
    plain = [{"subset": r["subset"], "correct": best_of_n_credit(r["scores"])} for r in records
             if r["subset"] != TIES]
    per_subset: dict[str, dict[str, Any]] = subset_accuracy(plain)
    ties = [r for r in records if r["subset"] == TIES]
    if ties:
        parts = ties_score(ties)
        per_subset[TIES] = {"n": len(ties), "accuracy": parts["score"], "ties": parts}
    scored = {s: per_subset[s]["accuracy"] if s in per_subset else None for s in V2_SUBSETS}
    missing = [s for s in V2_SUBSETS if s not in per_subset]
    return {
        "overall": mean_present(scored),
        "overall_over": [s for s, v in scored.items() if v is not None],
        "sections": scored,
        "subsets": per_subset,
        "missing_subsets": missing,
        "unscored_subsets": sorted(set(per_subset) - set(V2_SUBSETS)),
        "partial": bool(missing),
    }


# ---------------------------------------------------------------- data

def load_rows(source: str, split: str, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """(rows, rows in the source) of a hub dataset (an id, with ``split``) or a local .jsonl/.json/.parquet."""
    from datasets import load_dataset

    path = Path(source).expanduser()
    builder = LOCAL_BUILDERS.get(path.suffix)
    if builder:
        if not path.exists():
            raise InputError(f"{path}: file not found")
        dataset = load_dataset(builder, data_files=str(path), split="train")
    else:
        dataset = load_dataset(source, split=split)
    total = len(dataset)
    if limit is not None:
        dataset = dataset.select(range(min(limit, total)))
    rows = dataset.to_list()
    check_columns(rows, source)
    return rows, total


def check_columns(rows: Sequence[Mapping[str, Any]], source: str) -> None:
    """A row lacking a column is named with the file and row (1-based), before any scoring starts."""
    for i, row in enumerate(rows, start=1):
        missing = [c for c in COLUMNS if row.get(c) is None]
        if missing:
            raise InputError(f"{source}, row {i}: missing {', '.join(missing)}; expected columns "
                             f"{', '.join(COLUMNS)}")


def check_v2_row(row: Mapping[str, Any], i: int, source: str) -> None:
    """Best-of-n needs lists of responses; a Ties row also needs its ref:/tied: id and, when tied, two answers."""
    where = f"{source}, row {i}"
    for col in ("chosen", "rejected"):
        if not isinstance(row[col], list) or not row[col]:
            raise InputError(f"{where}: {col} should be a non-empty list of responses (RewardBench 2)")
    if row["subset"] != TIES:
        return
    kind, _, pid = str(row.get("id")).partition(":")
    if kind not in ("ref", "tied") or not pid.isdigit():
        raise InputError(f"{where}: a {TIES} row needs an id 'ref:<n>' or 'tied:<n>', got {row.get('id')!r}")
    if kind == "tied" and len(row["chosen"]) < 2:
        raise InputError(f"{where}: a tied {TIES} prompt needs at least two correct answers in chosen")


# ---------------------------------------------------------------- scoring

def score_all(scorer: RewardScorer, prompts: Sequence[Any], responses: Sequence[str], reporter: Reporter,
              description: str) -> list[float]:
    """One scorer call for every response, so the scorer's length sort spans the whole benchmark."""
    with reporter.task(description, total=len(responses)) as advance:
        return scorer.score(prompts, responses, progress=advance)


def v1_records(scorer: RewardScorer, rows: Sequence[Mapping[str, Any]], reporter: Reporter) -> list[dict]:
    prompts = [r["prompt"] for r in rows]
    responses = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    scores = score_all(scorer, prompts + prompts, responses, reporter, "RewardBench: scoring pairs")
    chosen, rejected = scores[: len(rows)], scores[len(rows):]
    return [{"id": r.get("id", i), "subset": r["subset"], "score_chosen": c, "score_rejected": j,
             "correct": pair_correct(c, j)}
            for i, (r, c, j) in enumerate(zip(rows, chosen, rejected, strict=True))]


def v2_records(scorer: RewardScorer, rows: Sequence[Mapping[str, Any]], reporter: Reporter) -> list[dict]:
    prompts, responses, sizes = [], [], []
    for r in rows:
        options = [*r["chosen"], *r["rejected"]]
        prompts += [r["prompt"]] * len(options)
        responses += options
        sizes.append(len(options))
    scores = score_all(scorer, prompts, responses, reporter, "RewardBench 2: scoring responses")
    out, lo = [], 0
    for i, (r, size) in enumerate(zip(rows, sizes, strict=True)):
        out.append({"id": r.get("id", i), "subset": r["subset"], "num_correct": len(r["chosen"]),
                    "scores": scores[lo: lo + size]})
        lo += size
    return out


# ---------------------------------------------------------------- leaderboard

def _percent(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 2)


def v1_leaderboard(model: str, scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    """This model beside Mutual-Taught's Table 2 reward rows, in percent as the paper prints them."""
    from reproduce.published import load_published

    s = scores["sections"]
    ours = {"model": model, "label": "this run" + (" (partial)" if scores["partial"] else ""),
            "chat": _percent(s["Chat"]), "chat_hard": _percent(s["Chat Hard"]), "safety": _percent(s["Safety"]),
            "reasoning": _percent(s["Reasoning"]), "average": _percent(scores["overall"]), "source": "this run"}
    published = [{"model": r["key"], "label": r["label"], "chat": r["chat"], "chat_hard": r["chat_hard"],
                  "safety": r["safety"], "reasoning": r["reasoning"], "average": r["average"],
                  "source": r["source"]} for r in load_published("table2")]
    return [ours, *published]


def v2_leaderboard(model: str, scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The paper reports no RewardBench 2 numbers, so the board is this model's row alone."""
    row = {"model": model, "label": "this run" + (" (partial)" if scores["partial"] else "")}
    row |= {s.lower().replace(" ", "_"): _percent(v) for s, v in scores["sections"].items()}
    return [{**row, "average": _percent(scores["overall"]), "source": "this run"}]


# ---------------------------------------------------------------- the benchmark

def parse_options(options: Mapping[str, str]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(OPTIONS_HELP))
    if unknown:
        raise InputError(f"reward-bench: unknown option {', '.join(unknown)}; known: {', '.join(OPTIONS_HELP)}")
    version = options.get("version", "1")
    if version not in ("1", "2"):
        raise InputError(f"reward-bench: --option version should be 1 or 2, got {version!r}")
    facts = FACTS[f"v{version}"]
    max_length = options.get("max_length")
    if max_length is not None and not (max_length.isdigit() and int(max_length) > 1):
        raise InputError(f"reward-bench: --option max_length should be an integer above 1, got {max_length!r}")
    return {"version": int(version), "split": options.get("split", facts["split"]), "dataset": facts["dataset"],
            "max_length": int(max_length) if max_length else None}


def model_max_length(model: str) -> int | None:
    from transformers import AutoConfig

    return getattr(AutoConfig.from_pretrained(model), "max_position_embeddings", None)


def run(request: BenchRequest, reporter: Reporter) -> dict[str, Any]:
    """Score ``request.model`` on RewardBench and write ``<out>/reward_bench.json`` (and per-pair scores)."""
    opts = parse_options(request.options)
    source = request.data or opts["dataset"]
    rows, total = load_rows(source, opts["split"], request.limit)
    if opts["version"] == 2:
        for i, row in enumerate(rows, start=1):
            check_v2_row(row, i, source)
    max_length = opts["max_length"] or model_max_length(request.model)
    scorer = load_scorer(request.model, dtype=request.dtype, batch_size=request.batch_size, max_length=max_length)
    try:
        if opts["version"] == 1:
            records = v1_records(scorer, rows, reporter)
            scores = v1_scores(subset_accuracy(records))
        else:
            records = v2_records(scorer, rows, reporter)
            scores = v2_scores(records)
    finally:
        scorer.close()
    scores["partial"] = partial = scores["partial"] or len(rows) < total
    board = (v1_leaderboard if opts["version"] == 1 else v2_leaderboard)(request.model, scores)
    out = Path(request.out)
    result = {
        "benchmark": "reward-bench",
        "version": opts["version"],
        "model": request.model,
        "data": {"source": source, "split": None if Path(source).suffix in LOCAL_BUILDERS else opts["split"],
                 "rows": len(rows), "rows_left_out": total - len(rows), "limit": request.limit},
        "scores": scores,
        "partial": partial,
        "truncated": getattr(scorer, "truncated", None),
        "scored_texts": sum(len(r["scores"]) for r in records) if opts["version"] == 2 else 2 * len(records),
        "max_length": max_length,
        "batch_size": request.batch_size,
        "leaderboard": board,
        "facts": FACTS["source"],
        "env": {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "git_commit": git_commit(), "versions": versions()},
        "scores_path": str(write_jsonl(out / "reward_bench_scores.jsonl", records)),
        "path": str(out / "reward_bench.json"),
    }
    write_json(out / "reward_bench.json", result)
    reporter.log(f"RewardBench v{opts['version']}: overall {_percent(scores['overall'])}"
                 f"{' (partial)' if partial else ''}, {result['truncated']} texts truncated -> {result['path']}")
    return result


register(Benchmark(
    name="reward-bench",
    description="RewardBench v1 (Chat, Chat Hard, Safety, Reasoning) or v2 for a one-logit reward model",
    needs_judge=False,
    model_kind="reward",
    run=run,
    options_help=OPTIONS_HELP,
))
