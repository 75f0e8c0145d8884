"""Lean training loops for building the world's initial models on a CPU.

The loop's updates (DPO, the M-step's Bradley-Terry) go through TRL; building the world needs only
next-token SFT (pi_0, r_0's backbone) and one Bradley-Terry fit (r_0), for thousands of steps of
models with 0.1-1M parameters, where a trainer's per-step overhead costs several times the maths.
These loops do the same maths directly: the text is rendered by the models' chat template exactly as
generation and ``mt.reward`` render it, the SFT loss covers the answer and its EOS, the RM's score is
the logit at the last real token (right padding, as TRL's RewardTrainer and ``mt.reward`` read it),
AdamW with a linear warm-up and cosine decay, gradients clipped at norm 1. Seeded and deterministic
for a fixed thread count and package set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..chat import encode_conversation, encode_prompt


def _schedule(optimizer, steps: int, warmup_ratio: float = 0.05):
    warmup = max(1, int(steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _step(model, optimizer, scheduler, loss) -> float:
    """One AdamW step on ``loss``, gradients clipped at norm 1; returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    return loss.item()


def _batches(n: int, batch_size: int, steps: int, generator: torch.Generator):
    """``steps`` batches of indices, reshuffling at each pass over the data."""
    order: list[int] = []
    for _ in range(steps):
        if len(order) < batch_size:
            order += torch.randperm(n, generator=generator).tolist()
        batch, order = order[:batch_size], order[batch_size:]
        yield batch


def sft(model, tokenizer, examples: Sequence[tuple[str, str]], steps: int, learning_rate: float, seed: int,
        batch_size: int = 64) -> dict[str, Any]:
    """Next-token loss on the answer (and its EOS) of each (prompt, answer), prompts masked."""
    rows = []
    for prompt, answer in examples:
        full, head = encode_conversation(tokenizer, prompt, answer), encode_prompt(tokenizer, prompt)
        rows.append((torch.tensor(full), len(head)))
    pad = tokenizer.pad_token_id
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    scheduler = _schedule(optimizer, steps)
    model.train()
    losses = []
    for batch in _batches(len(rows), batch_size, steps, generator):
        width = max(len(rows[i][0]) for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for k, i in enumerate(batch):
            full, start = rows[i]
            ids[k, : len(full)] = full
            labels[k, start: len(full)] = full[start:]
            mask[k, : len(full)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        losses.append(_step(model, optimizer, scheduler, loss))
    model.eval()
    tail = max(1, steps // 20)
    return {"steps": steps, "examples": len(examples), "batch_size": batch_size,
            "loss_first": sum(losses[:tail]) / tail, "loss_last": sum(losses[-tail:]) / tail}


def bradley_terry(model, tokenizer, pairs: Sequence[dict], epochs: float, learning_rate: float, seed: int,
                  prompts_per_batch: int = 16) -> dict[str, Any]:
    """Mean of -log sigmoid(r(x, chosen) - r(x, rejected)) over ``pairs`` ({id, prompt, chosen, rejected}).

    The pairs of one prompt are trained together and each distinct response is scored once per step (a
    prompt's 8 samples make up to 28 pairs), so an epoch costs a pass over the responses, not over the
    pairs; every pair still weighs the same in the loss.
    """
    from ..reward import encode_conversations, right_padded

    groups: dict[str, dict[str, Any]] = {}
    for p in pairs:
        g = groups.setdefault(p["id"], {"prompt": p["prompt"], "texts": {}, "pairs": []})
        idx = [g["texts"].setdefault(t, len(g["texts"])) for t in (p["chosen"], p["rejected"])]
        g["pairs"].append(tuple(idx))
    order = list(groups.values())
    for g in order:
        texts = list(g["texts"])
        g["ids"] = encode_conversations(tokenizer, [g["prompt"]] * len(texts), texts)
    pad = tokenizer.pad_token_id
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad
    steps = max(1, math.ceil(len(order) * epochs / prompts_per_batch))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    scheduler = _schedule(optimizer, steps)
    model.train()
    losses, accs = [], []
    for batch in _batches(len(order), prompts_per_batch, steps, generator):
        seqs, left, right = [], [], []
        for i in batch:
            g = order[i]
            base = len(seqs)
            seqs += g["ids"]
            left += [base + c for c, _ in g["pairs"]]
            right += [base + r for _, r in g["pairs"]]
        ids, mask = right_padded(seqs, pad)
        scores = model(input_ids=ids, attention_mask=mask).logits[:, 0]
        margin = scores[torch.tensor(left)] - scores[torch.tensor(right)]
        loss = -torch.nn.functional.logsigmoid(margin).mean()
        losses.append(_step(model, optimizer, scheduler, loss))
        accs.append((margin > 0).float().mean().item())
    model.eval()
    tail = max(1, steps // 20)
    return {"rm_steps": steps, "rm_pairs_used": len(pairs), "rm_prompts": len(order),
            "prompts_per_batch": prompts_per_batch, "loss_first": sum(losses[:tail]) / tail,
            "loss_last": sum(losses[-tail:]) / tail, "rm_train_accuracy": sum(accs[-tail:]) / tail}
