"""Model-free edits of a gold answer: the ``adv`` perturbations and the free-text ``corrupt`` edits.

Every function takes its own ``random.Random`` so a builder can seed one per row and the same
row always gets the same worse answers, whatever else is in the dataset.
"""

from __future__ import annotations

import math
import random
import re
import string

_TOKENS = re.compile(r"(\s+)")
_SPACES = re.compile(r"[ \t]{2,}")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _alphabet(ch: str) -> str:
    """Replacement characters of the same kind, so an edited number stays a number."""
    if ch.isdigit():
        return string.digits
    if ch.isupper():
        return string.ascii_uppercase
    return string.ascii_lowercase


def edit_word(word: str, rng: random.Random) -> str:
    """One character edit (swap, delete, insert or substitute) that changes the word."""
    ops = ["substitute", "insert"] + (["swap", "delete"] if len(word) >= 2 else [])
    while True:
        op = rng.choice(ops)
        i = rng.randrange(len(word))
        if op == "swap" and i < len(word) - 1 and word[i] != word[i + 1]:
            out = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        elif op == "delete":
            out = word[:i] + word[i + 1:]
        elif op == "insert":
            out = word[:i] + rng.choice(_alphabet(word[i])) + word[i:]
        else:
            out = word[:i] + rng.choice(_alphabet(word[i]).replace(word[i], "")) + word[i + 1:]
        if out != word:
            return out


def adversarial(text: str, rng: random.Random, fraction: float = 0.3) -> str:
    """Perturb about ``fraction`` of the words (at least one): mostly character edits, sometimes a dropped word.

    Mirrors SEAM's Adv source (character/word perturbations of y*, ~30% of words), model-free.
    """
    parts = _TOKENS.split(text)
    words = [i for i, p in enumerate(parts) if p and not p.isspace()]
    if not words:
        return text + rng.choice(string.ascii_lowercase)
    chosen = rng.sample(words, max(1, min(len(words), math.ceil(fraction * len(words) - 1e-9))))
    dropped = 0
    for i in chosen:
        if len(words) - dropped > 1 and rng.random() < 0.2:
            parts[i] = ""
            dropped += 1
        else:
            parts[i] = edit_word(parts[i], rng)
    return _SPACES.sub(" ", "".join(parts)).strip() if dropped else "".join(parts)


def drop_span(text: str, rng: random.Random, fraction: float = 1 / 3) -> str:
    """Remove a contiguous run of about ``fraction`` of the words: an answer with a gap."""
    words = text.split()
    n = max(1, round(fraction * len(words)))
    start = rng.randrange(len(words) - n + 1)
    return " ".join(words[:start] + words[start + n:])


def shuffle_order(text: str, rng: random.Random) -> str:
    """Shuffle the sentences (or, in a one-sentence answer, the words): right content, broken order."""
    units = _SENTENCE.split(text.strip())
    if len(units) < 2:
        units = text.split()
    if len(set(units)) < 2:
        return text
    original = list(units)
    while units == original:
        rng.shuffle(units)
    return " ".join(units)


def truncate(text: str, rng: random.Random) -> str:
    """Keep the first 30-70% of the words: an unfinished answer."""
    words = text.split()
    keep = max(1, min(len(words) - 1, round(rng.uniform(0.3, 0.7) * len(words))))
    return " ".join(words[:keep])


def repeat_span(text: str, rng: random.Random) -> str:
    """Repeat one sentence (or a run of words) in place: a padded, repetitive answer."""
    units = _SENTENCE.split(text.strip())
    if len(units) < 2:
        units = text.split()
    i = rng.randrange(len(units))
    return " ".join(units[: i + 1] + [units[i]] + units[i + 1:])


TEXT_CORRUPTIONS = (drop_span, shuffle_order, truncate, repeat_span)
