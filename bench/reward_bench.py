"""RewardBench for any one-logit sequence-classification reward model (v1; v2 with ``--option version=2``).

``run`` checks the model folder and loads the pairs (a local file read here, each bad row named by
file and line, or the hub), scores every response in batches through ``mt.reward`` and hands the
scores to the pure arithmetic in ``bench.metrics.reward_bench``. The ``rewardbench`` package is not a
dependency: it pins an old transformers and installs top-level ``analysis``/``scripts``/``tests``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mt.progress import QUIET, Reporter
from mt.records import InputError, iter_jsonl, read_json, write_json, write_jsonl

from .catalog import RewardBenchOptions
from .checks import check_file, check_model, looks_like_hub_id
from .metrics.reward_bench import FACTS, TIES, pair_correct, score_records
from .registry import BenchRequest, options_of

COLUMNS = ("prompt", "chosen", "rejected", "subset")
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")
OFFICIAL_SIZE = {1: 2985}  # rows of allenai/reward-bench's filtered split (the sum of the subsets' pairs)


# ---------------------------------------------------------------- data

def source_of(opts: RewardBenchOptions, data: str | None) -> tuple[str, str | None]:
    """(source, split): --data, else the version's hub dataset; the split is None for a local file."""
    facts = FACTS[f"v{opts.version}"]
    source = data or facts["dataset"]
    if is_local(source):
        return source, None
    return source, opts.split or facts["split"]


def is_local(source: str) -> bool:
    return Path(source).expanduser().exists() or Path(source).suffix in LOCAL_SUFFIXES or not looks_like_hub_id(source)


def load_rows(source: str, split: str | None, limit: int | None = None, version: int = 1
              ) -> tuple[list[dict[str, Any]], int]:
    """(rows, rows in the source) of a local .jsonl/.json/.parquet or a hub dataset (with ``split``), each row
    checked; a bad row is named by file and line (or row) before any scoring starts."""
    located = list(_local_rows(source) if is_local(source) else _hub_rows(source, split or "filtered"))
    total = len(located)
    if not located:
        raise InputError(f"{source}: no rows")
    located = located[:limit] if limit is not None else located
    for where, row in located:
        check_row(row, where, version)
    return [row for _, row in located], total


def _local_rows(source: str) -> Iterable[tuple[str, dict[str, Any]]]:
    path = check_file(source, "reward-bench data")
    if path.suffix == ".jsonl":
        return [(f"{path}, line {n}", row) for n, row in iter_jsonl(path)]
    if path.suffix == ".json":
        data = read_json(path)
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a JSON list of rows, got {type(data).__name__}")
        return [(f"{path}, row {n}", row) for n, row in enumerate(data, start=1)]
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        except Exception as e:  # a truncated or non-parquet file
            raise InputError(f"{path}: not a readable Parquet file ({type(e).__name__}: {_first_line(e)})") from None
        return [(f"{path}, row {n}", row) for n, row in enumerate(rows, start=1)]
    raise InputError(f"{path}: expected a .jsonl, .json or .parquet file")


def _hub_rows(source: str, split: str) -> Iterable[tuple[str, dict[str, Any]]]:
    from datasets import load_dataset

    try:
        dataset = load_dataset(source, split=split)
    except Exception as e:  # offline, a typo, no such split: one line that says what to do instead
        raise InputError(f"could not load {source} (split {split}) from the hub ({type(e).__name__}: "
                         f"{_first_line(e)}); pass --data FILE, a .jsonl/.json/.parquet with columns "
                         f"{', '.join(COLUMNS)}") from None
    return [(f"{source}, row {n}", row) for n, row in enumerate(dataset.to_list(), start=1)]


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else ""


def check_row(row: Any, where: str, version: int = 1) -> None:
    """The columns a row needs, with the types the version needs."""
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected an object with {', '.join(COLUMNS)}, got {type(row).__name__}")
    missing = [c for c in COLUMNS if row.get(c) is None]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)}; expected columns {', '.join(COLUMNS)}")
    if not isinstance(row["prompt"], str | list) or not isinstance(row["subset"], str):
        raise InputError(f"{where}: prompt should be text (or chat messages) and subset a string")
    if version == 1:
        for col in ("chosen", "rejected"):
            if not isinstance(row[col], str):
                raise InputError(f"{where}: {col} should be a string, got {type(row[col]).__name__}")
        return
    for col in ("chosen", "rejected"):
        if not isinstance(row[col], list) or not row[col] or not all(isinstance(x, str) for x in row[col]):
            raise InputError(f"{where}: {col} should be a non-empty list of responses (RewardBench 2)")
    if row["subset"] != TIES:
        return
    kind, _, pid = str(row.get("id")).partition(":")
    if kind not in ("ref", "tied") or not pid.isdigit():
        raise InputError(f"{where}: a {TIES} row needs an id 'ref:<n>' or 'tied:<n>', got {row.get('id')!r}")
    if kind == "tied" and len(row["chosen"]) < 2:
        raise InputError(f"{where}: a tied {TIES} prompt needs at least two correct answers in chosen")


# ---------------------------------------------------------------- scoring

def score_all(scorer, prompts: Sequence[Any], responses: Sequence[str], reporter: Reporter,
              description: str) -> list[float]:
    """One scorer call for every response, so the scorer's length sort spans the whole benchmark."""
    with reporter.task(description, total=len(responses)) as advance:
        return scorer.score(prompts, responses, progress=advance)


def v1_records(scorer, rows: Sequence[Mapping[str, Any]], reporter: Reporter) -> list[dict]:
    prompts = [r["prompt"] for r in rows]
    responses = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    scores = score_all(scorer, prompts + prompts, responses, reporter, "RewardBench: scoring pairs")
    chosen, rejected = scores[: len(rows)], scores[len(rows):]
    return [{"id": r.get("id", i), "subset": r["subset"], "score_chosen": c, "score_rejected": j,
             "correct": pair_correct(c, j)}
            for i, (r, c, j) in enumerate(zip(rows, chosen, rejected, strict=True))]


def v2_records(scorer, rows: Sequence[Mapping[str, Any]], reporter: Reporter) -> list[dict]:
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

def percent(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 2)


def section_key(section: str) -> str:
    """"Chat Hard" -> "chat_hard": the column name of a section in leaderboards and metrics."""
    return section.lower().replace(" ", "_")


def leaderboard(model: str, scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    """This model's row in percent, as leaderboards print it (no package ships RewardBench's leaderboard)."""
    row = {"model": model, "label": "this run" + (" (partial)" if scores["partial"] else "")}
    row |= {section_key(s): percent(v) for s, v in scores["sections"].items()}
    return [{**row, "average": percent(scores["overall"]), "source": "this run"}]


# ---------------------------------------------------------------- the benchmark

def model_max_length(model: str) -> int | None:
    from transformers import AutoConfig

    return getattr(AutoConfig.from_pretrained(model), "max_position_embeddings", None)


def run(request: BenchRequest, reporter: Reporter = QUIET) -> dict[str, Any]:
    """Score ``request.model`` on RewardBench and write ``<out>/reward_bench.json`` (and per-pair scores).

    The model folder and a local data file are checked before the hub is asked or a model loads.
    """
    from mt.reward import load_scorer
    from mt.rundir import git_commit, versions

    opts: RewardBenchOptions = options_of(request, "reward-bench")
    if not request.model:
        raise InputError("reward-bench needs --model (a one-logit reward model folder or hub id)")
    check_model(request.model, "reward")
    source, split = source_of(opts, request.data)
    rows, total = load_rows(source, split, request.limit, opts.version)
    max_length = opts.max_length or model_max_length(request.model)
    scorer = load_scorer(request.model, dtype=request.dtype, batch_size=request.batch_size, max_length=max_length)
    try:
        records = (v1_records if opts.version == 1 else v2_records)(scorer, rows, reporter)
    finally:
        scorer.close()
    scores = score_records(records, opts.version)
    scores["partial"] = partial = scores["partial"] or len(rows) < total
    out = Path(request.out)
    result = {
        "benchmark": "reward-bench",
        "version": opts.version,
        "model": request.model,
        "data": {"source": source, "split": split, "rows": len(rows), "rows_left_out": total - len(rows),
                 "limit": request.limit},
        "scores": scores,
        "partial": partial,
        "truncated": getattr(scorer, "truncated", None),
        "scored_texts": sum(len(r["scores"]) for r in records) if opts.version == 2 else 2 * len(records),
        "max_length": max_length,
        "batch_size": request.batch_size,
        "leaderboard": leaderboard(request.model, scores),
        "facts": FACTS["source"],
        "env": {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "git_commit": git_commit(), "versions": versions()},
        "scores_path": str(write_jsonl(out / "reward_bench_scores.jsonl", records)),
        "path": str(out / "reward_bench.json"),
    }
    write_json(out / "reward_bench.json", result)
    reporter.log(f"RewardBench v{opts.version}: overall {percent(scores['overall'])}"
                 f"{' (partial)' if partial else ''}, {result['truncated']} texts truncated -> {result['path']}")
    return result
