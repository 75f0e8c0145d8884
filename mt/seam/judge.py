"""Both models' judgements of y* and W: the policy's log-probability and the reward model's logit.

PM: the summed log-probability of answer+EOS given the prompt (the paper's judgement), and its
per-token mean. Each conversation is rendered once with ``encode_conversation``; the answer is
what follows the generation prompt, cut at the template's end-of-turn token, capped at
``max_answer_tokens`` (128 in the paper) and followed by that EOS. Batches are left-padded with
explicit positions, so only the last A+1 positions' logits are computed (``logits_to_keep``).
RM: ``mt.reward`` scores, the raw logits the RM was trained to give.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..chat import Messages, encode_conversation, encode_prompt
from ..generate import _eos_ids
from ..modeling import load_causal_lm, load_tokenizer, release_memory
from ..progress import QUIET, Reporter
from ..records import check_finite
from ..reward import ProgressFn, load_scorer


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


class PolicyLogProbs:
    """log pi(answer + EOS | prompt), batched; one model load for many prompts."""

    def __init__(self, model_path: str, dtype: str = "auto", batch_size: int = 16, max_answer_tokens: int = 128,
                 trust_remote_code: bool = False, model=None, tokenizer=None):
        self.path = model_path
        self.tokenizer = tokenizer or load_tokenizer(model_path, trust_remote_code)
        self.model = model or load_causal_lm(model_path, dtype, trust_remote_code=trust_remote_code)
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        self.batch_size = batch_size
        self.max_answer_tokens = max_answer_tokens
        self._prompt_ids: dict[str, list[int]] = {}

    def encode(self, prompt: Messages, answer: str) -> tuple[list[int], list[int]]:
        """(context ids, scored ids): scored = the answer's tokens, capped, then one EOS."""
        key = repr(prompt)
        if key not in self._prompt_ids:
            self._prompt_ids[key] = encode_prompt(self.tokenizer, prompt)
        full = encode_conversation(self.tokenizer, prompt, answer)
        start = common_prefix(full, self._prompt_ids[key])
        span = full[start:]
        cut = next((i for i, t in enumerate(span) if t in self.eos_ids), None)
        body, eos = (span, self.eos_ids[0]) if cut is None else (span[:cut], span[cut])
        return full[:start], body[: self.max_answer_tokens] + [eos]

    @torch.no_grad()
    def score(self, prompts: Sequence[Messages], answers: Sequence[str],
              progress: ProgressFn | None = None) -> list[dict[str, float]]:
        encoded = [self.encode(p, a) for p, a in zip(prompts, answers, strict=True)]
        order = sorted(range(len(encoded)), key=lambda i: -(len(encoded[i][0]) + len(encoded[i][1])))
        out: list[dict[str, float]] = [{} for _ in encoded]
        pad = self.tokenizer.pad_token_id
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo: lo + self.batch_size]
            seqs = [encoded[i][0] + encoded[i][1] for i in idx]
            width, span = max(map(len, seqs)), max(len(encoded[i][1]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, seq in enumerate(seqs):
                ids[row, width - len(seq):] = torch.tensor(seq)
                mask[row, width - len(seq):] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            device = self.model.device
            logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device),
                                position_ids=positions.to(device), logits_to_keep=span + 1).logits
            # Kept positions W-span-1 .. W-1; all but the last predict the final `span` tokens.
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            token_logp = logp.gather(-1, ids[:, -span:].to(device).unsqueeze(-1)).squeeze(-1)
            for row, i in enumerate(idx):
                n = len(encoded[i][1])
                values = token_logp[row, span - n:]
                total = values.sum().item()
                out[i] = {"pm_sum": total, "pm_mean": total / n, "pm_tokens": n}
            if progress:
                progress(len(idx))
        check_finite([o["pm_sum"] for o in out], f"policy {self.path} log-probabilities")
        return out

    def close(self) -> None:
        del self.model
        release_memory()


def judge(policy: str, reward: str, rows: Sequence[dict[str, Any]], worse: Sequence[Sequence[str]], *,
          dtype: str = "auto", batch_size: int = 16, max_answer_tokens: int = 128, trust_remote_code: bool = False,
          reporter: Reporter = QUIET) -> list[dict[str, Any]]:
    """One record per row that has worse answers: {"id", "prompt", "gold": {...}, "worse": [{...}], ...}.

    Each judged answer carries its text, ``pm_sum``, ``pm_mean``, ``pm_tokens`` and ``rm``.
    """
    kept = [i for i, w in enumerate(worse) if w]
    prompts = [rows[i]["prompt"] for i in kept for _ in range(1 + len(worse[i]))]
    texts = [t for i in kept for t in (rows[i]["answer"], *worse[i])]
    pm = PolicyLogProbs(policy, dtype, batch_size, max_answer_tokens, trust_remote_code)
    try:
        with reporter.task("SEAM: policy log-probabilities", len(texts)) as advance:
            pm_scores = pm.score(prompts, texts, advance)
    finally:
        pm.close()
    scorer = load_scorer(reward, dtype=dtype, batch_size=batch_size, trust_remote_code=trust_remote_code)
    try:
        with reporter.task("SEAM: reward scores", len(texts)) as advance:
            rm_scores = scorer.score(prompts, texts, advance)
    finally:
        scorer.close()
    judged = iter([{"text": t, **p, "rm": r} for t, p, r in zip(texts, pm_scores, rm_scores, strict=True)])
    records = []
    for i in kept:
        row = rows[i]
        extra = {k: v for k, v in row.items() if k not in ("prompt", "answer")}
        records.append({"id": row.get("id", str(i)), **extra, "prompt": row["prompt"], "gold": next(judged),
                        "worse": [next(judged) for _ in worse[i]]})
    return records
