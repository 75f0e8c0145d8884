"""Answers of the benchmarked model, saved chunk by chunk so a killed run generates only what is missing.

Each finished chunk is appended to a progress file as one JSON line per answer, tagged with the
generation settings; a rerun with the same settings reuses every answer it finds there. A line cut
by a kill is ignored and its answer generated again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mt.chat import Messages
from mt.generate import Sampling
from mt.progress import Reporter


def saved_answers(path: Path, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """key -> {text, num_tokens, finished} of the answers made with exactly these settings."""
    found: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a kill
            continue
        if row.get("settings") == settings:
            found[row["key"]] = row["answer"]
    return found


def generate_answers(request, prompts: Sequence[tuple[str, Messages]], sampling: Sampling, path: Path,
                     what: str, reporter: Reporter, chunk: int | None = None) -> tuple[dict[str, dict], dict]:
    """Answers for (key, prompt) pairs: reused from ``path`` or generated, ``chunk`` prompts per append."""
    from mt.generate import load_generator

    settings = {"model": request.model, "backend": request.backend, "sampling": asdict(sampling)}
    answers = saved_answers(path, settings)
    todo = [(k, p) for k, p in prompts if k not in answers]
    stats: dict[str, Any] = {"reused": len(prompts) - len(todo), "generated": len(todo)}
    if not todo:
        return answers, stats
    chunk = chunk or max(1, request.batch_size) * 8
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        with path.open("a") as log:  # end a torn line, so the next answer starts a line of its own
            log.write("\n")
    generator = load_generator(request.backend, request.model, dtype=request.dtype, batch_size=request.batch_size,
                               seed=request.seed)
    try:
        with reporter.task(what, len(todo)) as advance, path.open("a") as log:
            for lo in range(0, len(todo), chunk):
                part = todo[lo: lo + chunk]
                outs = generator.generate([p for _, p in part], sampling, advance)
                for (key, _), (completion, *_) in zip(part, outs, strict=True):
                    answers[key] = completion.to_dict()
                    log.write(json.dumps({"key": key, "settings": settings, "answer": answers[key]}) + "\n")
                log.flush()
    finally:
        generator.close()
    st = generator.stats
    stats.update(new_tokens=st.new_tokens, unfinished=st.unfinished, seconds=st.seconds)
    return answers, stats
