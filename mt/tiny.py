"""Tiny Llama-style models and a character tokenizer, built in-process and saved to folders.

Nothing here touches a hub: tests, CI and the gold world build real architectures at toy sizes,
save them with ``save_pretrained`` and every stage loads them back with ``from_pretrained``,
exactly as it would load a hub id.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
)

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
USER, ASSISTANT = "<|user|>", "<|assistant|>"

# The template puts BOS in the text itself, as Llama-3's does, while the tokenizer's post-processor
# also adds BOS to plain encodes: the doubled-BOS trap of real chat RMs is therefore reproducible here.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}" + USER + "{{ message['content'] }}"
    "{% elif message['role'] == 'assistant' %}" + ASSISTANT + "{{ message['content'] }}{{ eos_token }}"
    "{% elif message['role'] == 'system' %}{{ message['content'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}"
)

DEFAULT_ALPHABET = string.ascii_letters + string.digits + string.punctuation + " \n"


def build_tokenizer(corpus: Iterable[str] = (), alphabet: str = DEFAULT_ALPHABET, merges: int = 0):
    """Train a character-level BPE tokenizer (``merges`` extra merges) on ``corpus``.

    Character level keeps digits and list items one token each, which tiny models need to learn
    arithmetic and sorting at all.
    """
    specials = [PAD, BOS, EOS, UNK, USER, ASSISTANT]
    tok = Tokenizer(models.BPE(unk_token=UNK, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="\n", behavior="isolated")
    tok.decoder = decoders.Fuse()
    vocab_size = len(specials) + len(set(alphabet)) + merges
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=sorted(set(alphabet)),
        limit_alphabet=len(set(alphabet)),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus) or [alphabet], trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[USER, ASSISTANT],
        padding_side="left",
        model_max_length=512,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


@dataclass
class TinySize:
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    intermediate_size: int | None = None
    max_positions: int = 256


def _llama_config(tokenizer, size: TinySize, **extra) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size or 4 * size.hidden_size,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.heads,
        max_position_embeddings=size.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        **extra,
    )


def build_policy(tokenizer, size: TinySize = TinySize(), seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_llama_config(tokenizer, size))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def build_reward(tokenizer, size: TinySize = TinySize(), seed: int = 0) -> LlamaForSequenceClassification:
    """A one-logit sequence classifier: the pad id is set so the score is read at the last real token."""
    torch.manual_seed(seed)
    return LlamaForSequenceClassification(_llama_config(tokenizer, size, num_labels=1))


def save(model, tokenizer, path: str | Path) -> Path:
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_tiny_models(
    out_dir: str | Path,
    corpus: Iterable[str] = (),
    size: TinySize = TinySize(),
    seed: int = 0,
) -> tuple[Path, Path]:
    """Build and save an untrained tiny policy and reward model sharing one tokenizer."""
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(corpus)
    policy = save(build_policy(tokenizer, size, seed), tokenizer, out_dir / "policy")
    reward = save(build_reward(tokenizer, size, seed + 1), tokenizer, out_dir / "reward")
    return policy, reward
