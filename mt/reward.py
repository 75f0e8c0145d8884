"""Batched reward-model scoring: the raw logit of a one-logit sequence classifier.

Texts are rendered once through the RM's chat template (``chat.encode_conversation``), sorted
by length and right-padded as TRL's RewardTrainer pads them, so a score here is the score the
RM was trained to give.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

import torch

from .chat import Messages, as_messages, strip_double_bos
from .modeling import load_reward_model, load_tokenizer, release_memory
from .records import check_finite
from .registry import Registry

ProgressFn = Callable[[int], None]


class RewardScorer(Protocol):
    def score(self, prompts: Sequence[Messages], responses: Sequence[str],
              progress: ProgressFn | None = None) -> list[float]: ...

    def close(self) -> None: ...


SCORERS: Registry[Callable[..., RewardScorer]] = Registry("reward scorer")


@SCORERS.register("transformers")
class TransformersRewardScorer:
    def __init__(self, model_path: str, dtype: str = "auto", batch_size: int = 32, max_length: int | None = None,
                 attn_implementation: str | None = None, trust_remote_code: bool = False, model=None,
                 tokenizer=None, **_: object):
        self.path = model_path
        self.tokenizer = tokenizer or load_tokenizer(model_path, trust_remote_code)
        self.model = model or load_reward_model(model_path, dtype, attn_implementation, trust_remote_code)
        if self.model.config.pad_token_id is None:
            # Without a pad id the classifier pools the last position, which right padding would break.
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.batch_size = batch_size
        self.max_length = max_length
        self.truncated = 0
        self.seconds = 0.0

    def encode(self, prompts: Sequence[Messages], responses: Sequence[str]) -> list[list[int]]:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        encoded = encode_conversations(self.tokenizer, prompts, responses)
        if self.max_length:
            for i, ids in enumerate(encoded):
                if len(ids) > self.max_length:
                    # Keep the first token (BOS) and the end, where the score is read.
                    encoded[i] = ids[:1] + ids[len(ids) - self.max_length + 1:]
                    self.truncated += 1
        return encoded

    @torch.inference_mode()
    def score_ids(self, encoded: Sequence[list[int]], progress: ProgressFn | None = None) -> list[float]:
        start = time.perf_counter()
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        scores = [0.0] * len(encoded)
        pad = self.model.config.pad_token_id
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo: lo + self.batch_size]
            ids, mask = right_padded([encoded[i] for i in idx], pad)
            logits = self.model(input_ids=ids.to(self.model.device), attention_mask=mask.to(self.model.device)).logits
            for row, value in zip(idx, logits[:, 0].float().tolist(), strict=True):
                scores[row] = value
            if progress:
                progress(len(idx))
        self.seconds += time.perf_counter() - start
        return scores

    def score(self, prompts: Sequence[Messages], responses: Sequence[str],
              progress: ProgressFn | None = None) -> list[float]:
        scores = self.score_ids(self.encode(prompts, responses), progress)
        check_finite(scores, f"reward model {self.path}")
        return scores

    def close(self) -> None:
        del self.model
        release_memory()


def encode_conversations(tokenizer, prompts: Sequence[Messages], responses: Sequence[str]) -> list[list[int]]:
    """``chat.encode_conversation`` for many pairs in one templating and tokenizer call.

    One batched call lets the fast tokenizer encode in parallel; the ids are those of the
    one-at-a-time helper (a test compares them).
    """
    if not prompts:
        return []
    conversations = [[*as_messages(p), {"role": "assistant", "content": r}]
                     for p, r in zip(prompts, responses, strict=True)]
    encoded = tokenizer.apply_chat_template(conversations, tokenize=True)
    rows = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
    return [strip_double_bos(list(ids), tokenizer.bos_token_id) for ids in rows]


def right_padded(rows: Sequence[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of shape [len(rows), longest row], padded on the right as TRL's RewardTrainer pads."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], dtype=torch.long)
    return ids, mask


def load_scorer(model_path: str, backend: str = "transformers", **kwargs) -> RewardScorer:
    return SCORERS.get(backend)(model_path, **kwargs)
