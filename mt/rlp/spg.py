"""RLP-SPG (arXiv 2403.19279): synthetic preference pairs from n policy samples of one prompt.

The paper, step by step: cluster the n samples (n = 10, temperature 1.0) into equivalence classes
by bidirectional entailment; confidence = |largest cluster| / n; keep the prompt only if
confidence >= gamma (0.5) and there is more than one cluster; chosen = the member of the largest
cluster the current RM scores highest; rejected = a random member of another cluster.

Clustering is greedy, as in semantic-entropy work: each sample joins the first cluster whose
first member it is equivalent to, else opens a new one. It runs in rounds (sample s of every
prompt at once), so a judge sees one batch per round rather than one call per comparison.
Ties for the largest cluster go to the cluster formed first; a tie for the highest reward to the
earlier sample.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..chat import Messages
from .judges import EquivalenceJudge


@dataclass(frozen=True)
class SPGConfig:
    n: int = field(default=10, metadata={"help": "Policy samples per unlabelled prompt (paper: 10)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (paper: 1.0)."})
    gamma: float = field(default=0.5, metadata={"help": "Keep a prompt if its largest cluster holds at least "
                                                        "this fraction of the samples (paper: 0.5)."})
    judge: str = field(default="exact", metadata={
        "help": "Equivalence judge: exact (normalised answer), embedding (cosine >= 0.9), nli (local checkpoint).",
        "choices": ("exact", "embedding", "nli")})
    seed: int = field(default=0, metadata={"help": "Seed of the rejected-sample draw (one generator per prompt)."})


def cluster_labels(prompts: Sequence[Messages | str], groups: Sequence[Sequence[str]],
                   judge: EquivalenceJudge) -> list[list[int]]:
    """Per prompt, a cluster label for each sample (labels numbered in order of first appearance)."""
    labels = [[0] * len(g) for g in groups]
    firsts: list[list[int]] = [[0] if g else [] for g in groups]  # first member of each cluster
    for s in range(1, max((len(g) for g in groups), default=0)):
        asks = [(p, c) for p, g in enumerate(groups) if len(g) > s for c in range(len(firsts[p]))]
        verdicts = judge.equivalent([(prompts[p], groups[p][firsts[p][c]], groups[p][s]) for p, c in asks])
        joined: dict[int, int] = {}
        for (p, c), same in zip(asks, verdicts, strict=True):
            if same and p not in joined:
                joined[p] = c
        for p, g in enumerate(groups):
            if len(g) > s:
                if p not in joined:
                    joined[p] = len(firsts[p])
                    firsts[p].append(s)
                labels[p][s] = joined[p]
    return labels


def confidence(labels: Sequence[int]) -> tuple[int, float]:
    """(label of the largest cluster, its share of the samples)."""
    counts = Counter(labels)
    top = min(counts, key=lambda c: (-counts[c], c))
    return top, counts[top] / len(labels)


def choose_pair(labels: Sequence[int], rewards: Sequence[float], gamma: float,
                rng: random.Random) -> tuple[tuple[int, int] | None, str, float]:
    """((chosen, rejected) sample indices or None, why, confidence)."""
    if len(set(labels)) < 2:
        return None, "one_cluster", 1.0
    top, conf = confidence(labels)
    if conf < gamma:
        return None, "low_confidence", conf
    members = [i for i, c in enumerate(labels) if c == top]
    chosen = max(members, key=lambda i: (rewards[i], -i))
    rejected = rng.choice([i for i, c in enumerate(labels) if c != top])
    return (chosen, rejected), "kept", conf


def spg_pairs(samples: Sequence[dict[str, Any]], judge: EquivalenceJudge, gamma: float = 0.5,
              seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Pairs for ``train_reward_model`` from scored policy samples, and what happened to each prompt.

    ``samples`` rows: {"id", "prompt", "responses": [{"text", "reward"}, ...]} (the E-step's format,
    ``reward`` = the current RM's score).
    """
    texts = [[r["text"] for r in row["responses"]] for row in samples]
    labels = cluster_labels([row["prompt"] for row in samples], texts, judge)
    pairs, reasons, confidences = [], Counter(), []
    for row, group, lab in zip(samples, texts, labels, strict=True):
        rewards = [r["reward"] for r in row["responses"]]
        picked, why, conf = choose_pair(lab, rewards, gamma, random.Random(f"{seed}:{row['id']}"))
        reasons[why] += 1
        confidences.append(conf)
        if picked is not None:
            c, r = picked
            pairs.append({"id": row["id"], "prompt": row["prompt"], "chosen": group[c], "rejected": group[r],
                          "chosen_reward": rewards[c], "rejected_reward": rewards[r], "confidence": conf,
                          "clusters": len(set(lab))})
    stats = {
        "spg_prompts": len(samples),
        "spg_pairs": len(pairs),
        "spg_skipped_one_cluster": reasons["one_cluster"],
        "spg_rejected_low_confidence": reasons["low_confidence"],
        "spg_mean_confidence": sum(confidences) / len(confidences) if confidences else float("nan"),
        "spg_mean_clusters": sum(len(set(lab)) for lab in labels) / len(labels) if labels else float("nan"),
        "spg_judge": judge.name,
        "spg_gamma": gamma,
    }
    return pairs, stats
