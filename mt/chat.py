"""Rendering prompts and responses through the model's own chat template, once.

Every model in this project (policy, reward model, judge) sees text only through these helpers,
so the generation prompt, the DPO/RM training text (rendered by TRL with the same template) and
the RM scoring text agree token for token.
"""

from __future__ import annotations

from typing import Any

Messages = list[dict[str, str]]


def as_messages(prompt: str | Messages) -> Messages:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return prompt


def strip_double_bos(ids: list[int], bos_id: int | None) -> list[int]:
    """Drop a second leading BOS (a template that writes BOS, tokenised by a tokenizer that adds one)."""
    if bos_id is not None and len(ids) >= 2 and ids[0] == bos_id and ids[1] == bos_id:
        return ids[1:]
    return ids


def _ids(encoded: Any) -> list[int]:
    # transformers 5 returns a BatchEncoding by default, 4.x a list of ids.
    ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
    return list(ids)


def encode_prompt(tokenizer, prompt: str | Messages) -> list[int]:
    ids = _ids(tokenizer.apply_chat_template(as_messages(prompt), add_generation_prompt=True, tokenize=True))
    return strip_double_bos(ids, tokenizer.bos_token_id)


def encode_conversation(tokenizer, prompt: str | Messages, response: str) -> list[int]:
    messages = [*as_messages(prompt), {"role": "assistant", "content": response}]
    ids = _ids(tokenizer.apply_chat_template(messages, tokenize=True))
    return strip_double_bos(ids, tokenizer.bos_token_id)


def prompt_text(prompt: str | Messages) -> str:
    """The last user turn, for display and for judges that take plain text."""
    messages = as_messages(prompt)
    users = [m["content"] for m in messages if m.get("role") == "user"]
    return users[-1] if users else messages[-1]["content"]
