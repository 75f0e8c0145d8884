"""The judge and the meta-judge of Meta-Rewarding as text: prompts in, parsed verdicts out.

Judges are data here: the paper preset reads the judge and meta-judge prompts from files the user
gives (the Self-Rewarding additive 5-point prompt is not ours to ship); the gold world has two short
built-in templates of its own, sized for a model that sees 128 tokens. Everything in this module is
a pure function, so parsing, the positional-bias weights and the Elo fit are tested by hand.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from mt.records import InputError

# Gold-world templates: one line of framing, the question, the answer under review (and two judgments).
TINY_JUDGE = "Rate: {prompt} | {response}"
TINY_META = "Which? {prompt} | {response} | A: {judgment_a} | B: {judgment_b}"
# One word per score, so a gold-world judgment reads as a (very) short verdict before its score.
TINY_WORDS = {1: "Wrong", 2: "Poor", 3: "Partial", 4: "Close", 5: "Right"}

JUDGE_FIELDS = ("prompt", "response")
META_FIELDS = ("prompt", "response", "judgment_a", "judgment_b")

# The last "Score:" is the verdict: an explanation may quote the rubric's "Score:" before concluding.
# Markdown bold around the number ("Score: **4**") is tolerated; a fraction ("4.5") is not a score.
_SCORE = re.compile(r"Score:\s*\**\s*(-?\d+(?:\.\d+)?)")
_WINNER = re.compile(r"Winner:\s*\**\s*(?:Judgment\s+)?([AB])\b")


BUILTIN = {"builtin:tiny": {JUDGE_FIELDS: TINY_JUDGE, META_FIELDS: TINY_META}}


def load_template(path: str, fields: Sequence[str], option: str) -> str:
    """A prompt file with ``{field}`` placeholders (every field must appear, so no judge runs blind), or a
    built-in template by name (``builtin:tiny``: the one-line prompts a tiny model is taught to answer)."""
    if path in BUILTIN:
        return BUILTIN[path][tuple(fields)]
    if not path:
        raise InputError(f"method.{option} is not set: give the path of a prompt file with placeholders "
                         f"{', '.join('{' + f + '}' for f in fields)}")
    file = Path(path).expanduser()
    if not file.exists():
        raise InputError(f"method.{option}={path!r}: file not found")
    text = file.read_text()
    missing = [f for f in fields if "{" + f + "}" not in text]
    if missing:
        raise InputError(f"method.{option}={path!r}: the prompt lacks placeholders "
                         f"{', '.join('{' + f + '}' for f in missing)}")
    return text


def render(template: str, **values: str) -> str:
    """Fill ``{name}`` placeholders by plain replacement: prompts may hold other braces (JSON, code)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def parse_score(text: str, low: int, high: int) -> int | None:
    """The judgment's final "Score: k" as an integer in [low, high]; None when absent or invalid."""
    found = _SCORE.findall(text)
    if not found:
        return None
    value = float(found[-1])
    if not value.is_integer() or not low <= value <= high:
        return None
    return int(value)


def parse_verdict(text: str) -> str | None:
    """"A" or "B" from the meta-judge's last "Winner: ..." line; None when it names neither."""
    found = _WINNER.findall(text)
    return found[-1] if found else None


# ---------------------------------------------------------------- the gold world's judge-training set
def bucket(gold: float, edges: Sequence[float]) -> int:
    """Gold reward -> score 1..len(edges)+1: one point per edge the reward reaches."""
    return 1 + sum(gold >= e for e in edges)


def tiny_judgment(score: int) -> str:
    return f"{TINY_WORDS.get(score, 'Score')}. Score: {score}"


def tiny_verdict(winner: str) -> str:
    return f"Winner: {winner}"


# ---------------------------------------------------------------- meta-judging: weights and Elo
def positional_weights(verdicts: Sequence[tuple[int, int, str]]) -> tuple[float, float]:
    """(w_first, w_second): a win from the position the meta-judge favours counts for less.

    With omega_1 and omega_2 the wins of the first and second position, a first-position win weighs
    omega_2 / (omega_1 + omega_2) and a second-position win omega_1 / (omega_1 + omega_2); an unbiased
    meta-judge gets 1/2 for both, one that always answers "A" gets (0, 1) and so teaches nothing.
    """
    first = sum(v == "A" for _, _, v in verdicts)
    second = sum(v == "B" for _, _, v in verdicts)
    if first + second == 0:
        return 0.5, 0.5
    return second / (first + second), first / (first + second)


def battle_matrix(n: int, verdicts: Sequence[tuple[int, int, str]], weights: tuple[float, float]) -> list[list[float]]:
    """B[m][k] = weighted wins of judgment m over k; a verdict (a, b, "A") means a, shown first, won."""
    wins = [[0.0] * n for _ in range(n)]
    for a, b, v in verdicts:
        if v == "A":
            wins[a][b] += weights[0]
        elif v == "B":
            wins[b][a] += weights[1]
    return wins


def bt_ratings(wins: Sequence[Sequence[float]], prior: float = 0.0, iterations: int = 500) -> list[float]:
    """Bradley-Terry log-strengths maximising sum B[m][k] log sigmoid(r_m - r_k) (Elo up to 400/ln 10).

    Hunter's MM updates. ``prior`` adds that many virtual wins each way to every pair that met, so an
    undefeated judgment gets a finite rating. Battles fix ratings only up to a constant within each
    group of judgments linked by battles, so each group is centred at 0 (a judgment that never met
    another stays at 0); one common centre would leave the groups' offsets to the update order.
    """
    n = len(wins)
    met = [[i != j and wins[i][j] + wins[j][i] > 0 for j in range(n)] for i in range(n)]
    b = [[wins[i][j] + (prior if met[i][j] else 0.0) for j in range(n)] for i in range(n)]
    p = [1.0] * n
    groups = _linked_groups(met)
    for _ in range(iterations):
        for i in range(n):
            total = sum(b[i])
            denom = sum((b[i][j] + b[j][i]) / (p[i] + p[j]) for j in range(n) if met[i][j])
            if denom > 0:
                p[i] = max(total / denom, 1e-12)
        for group in groups:
            centre = math.exp(sum(math.log(p[i]) for i in group) / len(group))
            for i in group:
                p[i] /= centre
    return [math.log(x) for x in p]


def _linked_groups(met: Sequence[Sequence[bool]]) -> list[list[int]]:
    """The connected components of the battle graph."""
    seen, groups = set(), []
    for start in range(len(met)):
        if start in seen:
            continue
        seen.add(start)
        group, stack = [], [start]
        while stack:
            i = stack.pop()
            group.append(i)
            for j, linked in enumerate(met[i]):
                if linked and j not in seen:
                    seen.add(j)
                    stack.append(j)
        groups.append(group)
    return groups


def extremes(ratings: Sequence[float], tol: float = 1e-9) -> tuple[int, int] | None:
    """(highest, lowest) rated judgment; None when the ratings do not separate them."""
    hi = max(range(len(ratings)), key=lambda i: ratings[i])
    lo = min(range(len(ratings)), key=lambda i: ratings[i])
    return None if ratings[hi] - ratings[lo] <= tol else (hi, lo)
