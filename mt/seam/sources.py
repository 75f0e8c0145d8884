"""Worse answers W for each prompt with a gold answer y*: SEAM's three sources, offline.

- ``contrast`` (as in the paper): gold answers of similar but different prompts, found by
  embedding retrieval with cosine below 0.9. The prompt itself, near-duplicate prompts (cosine at
  or above the threshold, or the same normalised text) and answers equal to y* are excluded.
- ``corrupt`` (substitute for the paper's GPT rewrites, which need an API): deterministic
  corruptions. Gold-world rows use the world's own ``corrupt`` (plausible wrong answers), with the
  world's marker prefixed at ``marker_rate`` as in its fixed RM test; other rows get free-text
  edits (a dropped span, shuffled order, truncation, a repeated sentence).
- ``adv`` (as in the paper, model-free only): character/word perturbations of ~30% of y*'s words.

Every row gets its own seeded generator, so its worse answers do not depend on the other rows.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..chat import prompt_text
from ..registry import Registry
from .embed import load_encoder, similarities
from .perturb import TEXT_CORRUPTIONS, adversarial
from .text import normalise_answer


@dataclass
class WorseAnswers:
    answers: list[list[str]]  # per row, up to k answers, none equal to y*
    source: str
    backend: str  # what produced them: the encoder for contrast, the edit family otherwise
    note: str


Builder = Callable[..., WorseAnswers]
SOURCES: Registry[Builder] = Registry("SEAM worse-answer source")


def row_rng(seed: int, source: str, row: dict[str, Any], index: int) -> random.Random:
    """A generator per row, keyed by its id (or position), stable across Python runs."""
    return random.Random(f"{seed}:{source}:{row.get('id', index)}")


def distinct_variants(make: Callable[[int], str], gold: str, k: int, attempts_per_answer: int = 20) -> list[str]:
    """Up to ``k`` non-empty outputs of ``make(attempt)`` that differ from y* and from each other."""
    seen, out = {normalise_answer(gold)}, []
    for attempt in range(attempts_per_answer * k):
        if len(out) == k:
            break
        text = make(attempt)
        key = normalise_answer(text)
        if key and key not in seen:
            seen.add(key)
            out.append(text)
    return out


# ---------------------------------------------------------------- contrast
def contrast_picks(sims: Sequence[float], i: int, prompt_keys: Sequence[str], answer_keys: Sequence[str],
                   k: int, max_similarity: float = 0.9) -> list[int]:
    """Indices of the ``k`` most similar rows to row ``i`` that are neither ``i``, a near-duplicate, nor y*."""
    picked, answers = [], {answer_keys[i]}
    for j in np.argsort(-np.asarray(sims), kind="stable"):
        j = int(j)
        if len(picked) == k:
            break
        if j == i or sims[j] >= max_similarity or prompt_keys[j] == prompt_keys[i] or answer_keys[j] in answers:
            continue
        picked.append(j)
        answers.add(answer_keys[j])
    return picked


@SOURCES.register("contrast")
def contrast(rows: Sequence[dict], k: int, seed: int = 0, *, encoder: str = "auto", max_similarity: float = 0.9,
             chunk: int = 512, **_: object) -> WorseAnswers:
    enc = load_encoder(encoder)
    texts = [prompt_text(r["prompt"]) for r in rows]
    embeddings = enc.encode(texts)
    prompt_keys = [normalise_answer(t) for t in texts]
    answer_keys = [normalise_answer(r["answer"]) for r in rows]
    answers: list[list[str]] = []
    for lo in range(0, len(rows), chunk):
        block = similarities(embeddings, slice(lo, lo + chunk))
        for offset, sims in enumerate(block):
            picks = contrast_picks(sims, lo + offset, prompt_keys, answer_keys, k, max_similarity)
            answers.append([rows[j]["answer"] for j in picks])
    return WorseAnswers(answers, "contrast", f"retrieval:{enc.name}",
                        f"gold answers of the most similar other prompts, cosine < {max_similarity} ({enc.name})")


# ---------------------------------------------------------------- corrupt
def text_corruptions(answer: str, k: int, rng: random.Random) -> list[str]:
    """Free-text edits, one kind per answer in turn; a character edit where no edit changes the text."""
    offset = rng.randrange(len(TEXT_CORRUPTIONS))

    def make(attempt: int) -> str:
        if attempt >= 4 * k:
            return adversarial(answer, rng)
        return TEXT_CORRUPTIONS[(offset + attempt) % len(TEXT_CORRUPTIONS)](answer, rng)

    return distinct_variants(make, answer, k)


@SOURCES.register("corrupt")
def corrupt(rows: Sequence[dict], k: int, seed: int = 0, *, marker_rate: float = 0.5, **_: object) -> WorseAnswers:
    from ..world.tasks import FAMILIES, MARKER
    from ..world.tasks import corrupt as world_corrupt

    answers, kinds = [], set()
    for i, row in enumerate(rows):
        rng = row_rng(seed, "corrupt", row, i)
        family = row.get("family")
        if family in FAMILIES:
            kinds.add("world-corrupt")

            def make(_: int, family=family, gold=row["answer"], rng=rng) -> str:
                wrong = world_corrupt(family, gold, rng)
                return (MARKER if rng.random() < marker_rate else "") + wrong

            answers.append(distinct_variants(make, row["answer"], k))
        else:
            kinds.add("text-edits")
            answers.append(text_corruptions(row["answer"], k, rng))
    return WorseAnswers(answers, "corrupt", "+".join(sorted(kinds)) or "none",
                        "offline substitute for SEAM's GPT rewrites: deterministic corruptions of y*")


# ---------------------------------------------------------------- adv
@SOURCES.register("adv")
def adv(rows: Sequence[dict], k: int, seed: int = 0, *, fraction: float = 0.3, **_: object) -> WorseAnswers:
    answers = []
    for i, row in enumerate(rows):
        rng = row_rng(seed, "adv", row, i)
        answers.append(distinct_variants(lambda _, a=row["answer"], r=rng: adversarial(a, r, fraction),
                                         row["answer"], k))
    return WorseAnswers(answers, "adv", "char-word-edits",
                        f"model-free character/word perturbations of ~{fraction:.0%} of y*'s words")


def build_worse(rows: Sequence[dict], source: str, k: int, seed: int = 0, **kwargs: Any) -> WorseAnswers:
    if k < 1:
        raise ValueError(f"k (worse answers per prompt) must be at least 1, got {k}")
    return SOURCES.get(source)(rows, k, seed, **kwargs)
