"""Equivalence judges for RLP-SPG: do two answers to one prompt say the same thing?

One batched interface, ``judge.equivalent([(prompt, a, b), ...]) -> [bool, ...]``, three backends:

- ``exact``: normalised exact answer; the default for tasks with canonical answers (the gold world,
  where ``strip_prefixes=(MARKER,)`` makes "Sure! 12" and "12" one answer).
- ``embedding``: cosine of sentence embeddings at or above a threshold (0.9, MiniLM by default).
- ``nli``: bidirectional entailment under a local NLI checkpoint (the paper: DeBERTa-large). Like
  semantic-entropy clustering, "question + a" must entail "question + b" and the reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from ..chat import Messages, prompt_text
from ..registry import Registry
from ..seam.embed import load_encoder
from ..seam.text import normalise_answer

Triple = tuple[Messages | str, str, str]  # (prompt, answer a, answer b)


class EquivalenceJudge(Protocol):
    name: str

    def equivalent(self, items: Sequence[Triple]) -> list[bool]: ...


JUDGES: Registry[Callable[..., EquivalenceJudge]] = Registry("equivalence judge")


@JUDGES.register("exact")
class ExactAnswerJudge:
    name = "exact"

    def __init__(self, strip_prefixes: Sequence[str] = (), **_: object):
        self.strip_prefixes = tuple(strip_prefixes)

    def key(self, text: str) -> str:
        return normalise_answer(text, self.strip_prefixes)

    def equivalent(self, items: Sequence[Triple]) -> list[bool]:
        return [self.key(a) == self.key(b) for _, a, b in items]


@JUDGES.register("embedding")
class EmbeddingJudge:
    """Cosine >= threshold between the two answers' embeddings (the prompt is shared, so left out)."""

    def __init__(self, threshold: float = 0.9, encoder: str = "minilm", **kwargs: object):
        self.threshold = threshold
        self.encoder = load_encoder(encoder, **kwargs)
        self.name = f"embedding:{self.encoder.name}"

    def equivalent(self, items: Sequence[Triple]) -> list[bool]:
        if not items:
            return []
        texts = list(dict.fromkeys(t for _, a, b in items for t in (a, b)))
        index = {t: i for i, t in enumerate(texts)}
        emb = self.encoder.encode(texts)
        out = []
        for _, a, b in items:
            sim = emb[index[a]] @ emb[index[b]].T
            sim = float(sim.toarray()[0, 0]) if hasattr(sim, "toarray") else float(sim)
            out.append(a == b or sim >= self.threshold)
        return out


@JUDGES.register("nli")
class NLIJudge:
    """Bidirectional entailment: both directions' argmax must be the checkpoint's entailment label."""

    name = "nli"

    def __init__(self, model_path: str, batch_size: int = 32, device: str | None = None, model=None,
                 tokenizer=None, **_: object):
        import torch

        if model is None:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model_path)
            model = AutoModelForSequenceClassification.from_pretrained(model_path)
            model = model.to(torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")))
        self.model, self.tokenizer = model.eval(), tokenizer
        self.batch_size = batch_size
        self.entailment = entailment_label(model.config.id2label, model_path)

    def entails(self, premises: Sequence[str], hypotheses: Sequence[str]) -> list[bool]:
        import torch

        out: list[bool] = []
        device = next(self.model.parameters()).device
        with torch.no_grad():
            for lo in range(0, len(premises), self.batch_size):
                enc = self.tokenizer(list(premises[lo: lo + self.batch_size]),
                                     list(hypotheses[lo: lo + self.batch_size]),
                                     padding=True, truncation=True, return_tensors="pt")
                enc = {k: v.to(device) for k, v in enc.items()}
                out += (self.model(**enc).logits.argmax(-1) == self.entailment).tolist()
        return out

    def equivalent(self, items: Sequence[Triple]) -> list[bool]:
        texts = [(f"{prompt_text(p)} {a}", f"{prompt_text(p)} {b}") for p, a, b in items]
        forward = self.entails([x for x, _ in texts], [y for _, y in texts])
        backward = self.entails([y for _, y in texts], [x for x, _ in texts])
        return [f and b for f, b in zip(forward, backward, strict=True)]


def entailment_label(id2label: dict, model_path: str = "") -> int:
    for i, label in id2label.items():
        if str(label).lower() == "entailment":
            return int(i)
    raise ValueError(f"NLI checkpoint {model_path!r} has no 'entailment' label (labels: {dict(id2label)})")


def load_judge(name: str = "exact", **kwargs) -> EquivalenceJudge:
    return JUDGES.get(name)(**kwargs)
