"""RLP-UML: TRL's Bradley-Terry reward training plus lambda * L_M on two policy samples per row.

How the views travel through TRL, with the least code:
- each training pair carries three extra columns, ``view_prompt`` (messages), ``view1`` and
  ``view2`` (two policy samples of that prompt; ``attach_views`` adds them). Build the dataset with
  ``preference_dataset(pairs, extra_columns=VIEW_COLUMNS)``;
- ``_prepare_dataset`` lets TRL tokenise chosen/rejected as usual, then renders each view through
  the RM's chat template (``encode_conversation``, as scoring does) into ``view1_ids``/``view2_ids``;
- ``_set_signature_columns_if_needed`` keeps those two columns, and the parent's collator is
  wrapped to pad them into ``view_input_ids``/``view_attention_mask`` (view1 rows, then view2 rows);
- ``compute_loss`` pops the view tensors, calls the parent for the BT loss (so lambda = 0 is exactly
  TRL's loss) and adds lambda * L_M from one extra forward pass over the views.

The encoder heads and critic ride on the model as the submodule ``rlp_uml_heads`` so the optimiser,
device placement and sharding see them, and are listed in ``_keys_to_ignore_on_save``: they are
training-only, and the saved RM is the plain one-logit model (a new M-step starts fresh heads).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset
from torch.nn.utils.rnn import pad_sequence
from trl import RewardTrainer
from trl.data_utils import get_dataset_column_names

from ..chat import encode_conversation
from .multiview import MultiViewHeads

VIEW_COLUMNS = ("view_prompt", "view1", "view2")
VIEW_IDS = ("view1_ids", "view2_ids")
HEADS = "rlp_uml_heads"


@dataclass(frozen=True)
class UMLConfig:
    lam: float = field(default=0.5, metadata={"help": "Weight of L_M in BT + lambda * L_M (paper: 0.5)."})
    z_dim: int = field(default=32, metadata={"help": "Size of z (not stated in the paper; 32-64 reasonable).",
                                              "reconstructed": True})
    hidden: int = field(default=256, metadata={"help": "Width of the encoder and critic MLPs (not stated).",
                                                "reconstructed": True})
    skl_weight: float = field(default=1.0, metadata={
        "help": "Weight of the symmetrised KL inside L_M: 1 = the paper's L_M; lower it if the heads collapse "
                "(uml_mi stuck at -2 log 2 = -1.386 with uml_skl near 0; see mt/rlp/multiview.py)."})


def view_pairs(samples: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """One view pair per prompt with 2+ samples: two distinct samples, drawn by a per-prompt generator."""
    out = []
    for row in samples:
        texts = [r["text"] for r in row["responses"]]
        if len(texts) >= 2:
            i, j = random.Random(f"{seed}:{row['id']}").sample(range(len(texts)), 2)
            out.append({"view_prompt": row["prompt"], "view1": texts[i], "view2": texts[j]})
    return out


def attach_views(pairs: Sequence[dict[str, Any]], views: Sequence[dict[str, Any]],
                 seed: int = 0) -> list[dict[str, Any]]:
    """Each BT pair gets one view pair: views shuffled once, then cycled when there are fewer than pairs.

    The views' prompt need not be the pair's: the paper's L_M runs on unlabelled prompts' samples.
    """
    if not views:
        raise ValueError("RLP-UML needs at least one view pair (two policy samples of one prompt)")
    order = list(range(len(views)))
    random.Random(seed).shuffle(order)
    return [{**p, **views[order[i % len(order)]]} for i, p in enumerate(pairs)]


def clip_ids(ids: list[int], max_length: int | None) -> list[int]:
    """Keep the first token (BOS) and the end, where the representation is read, as scoring does."""
    if max_length is None or len(ids) <= max_length:
        return ids
    return ids[:1] + ids[len(ids) - max_length + 1:]


@dataclass
class ViewCollator:
    """The parent's collator for chosen/rejected, plus right-padded views (view1 rows, then view2 rows)."""

    inner: Callable[[list[dict[str, Any]]], dict[str, Any]]
    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner([{k: v for k, v in e.items() if k not in VIEW_IDS} for e in examples])
        if examples and VIEW_IDS[0] in examples[0]:
            seqs = [torch.tensor(e[v]) for v in VIEW_IDS for e in examples]
            batch["view_input_ids"] = pad_sequence(seqs, batch_first=True, padding_value=self.pad_token_id)
            batch["view_attention_mask"] = pad_sequence([torch.ones_like(s) for s in seqs], batch_first=True)
        return batch


class UMLRewardTrainer(RewardTrainer):
    """RewardTrainer with RLP-UML's multi-view loss; pass ``uml=UMLConfig(...)`` (functools.partial works)."""

    _tag_names = ["trl", "reward-trainer", "rlp-uml"]
    _name = "RLP-UML"
    _paper = {"title": "Fine-Tuning Language Models with Reward Learning on Policy", "id": "2403.19279"}

    def __init__(self, *args, uml: UMLConfig | None = None, **kwargs):
        self.uml = uml or UMLConfig()
        super().__init__(*args, **kwargs)
        if self.uml.lam and VIEW_IDS[0] not in get_dataset_column_names(self.train_dataset):
            raise ValueError(
                f"RLP-UML (lambda={self.uml.lam}) needs the columns {', '.join(VIEW_COLUMNS)} in every training "
                "pair: add them with mt.rlp.uml.attach_views and keep them with "
                "preference_dataset(pairs, extra_columns=VIEW_COLUMNS)")
        self.data_collator = ViewCollator(self.data_collator, self.processing_class.pad_token_id)
        device = next(self.model.parameters()).device
        heads = MultiViewHeads(self.model.config.get_text_config().hidden_size, self.uml.z_dim, self.uml.hidden)
        self.model.add_module(HEADS, heads.to(device))
        ignored = set(getattr(self.model, "_keys_to_ignore_on_save", None) or ())
        self.model._keys_to_ignore_on_save = ignored | {f"{HEADS}.{k}" for k in heads.state_dict()}

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        columns = set(get_dataset_column_names(dataset))
        if not set(VIEW_COLUMNS) <= columns or VIEW_IDS[0] in columns:
            return dataset

        def tokenize_views(example):
            return {f"{v}_ids": clip_ids(encode_conversation(processing_class, example["view_prompt"], example[v]),
                                         args.max_length) for v in ("view1", "view2")}

        kwargs = {"desc": f"Tokenizing {dataset_name} views"} if isinstance(dataset, Dataset) else {}
        return dataset.map(tokenize_views, **kwargs)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        self._signature_columns = [*self._signature_columns, *(c for c in VIEW_IDS if c not in self._signature_columns)]

    @property
    def heads(self) -> MultiViewHeads:
        return getattr(self.accelerator.unwrap_model(self.model), HEADS)

    def multiview_terms(self, model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_M and its parts from the RM's last-layer state at each view's last real token (right padding)."""
        out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, use_cache=False)
        hidden = out.hidden_states[-1]  # (2B, T, H)
        last = attention_mask.sum(-1) - 1
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()
        h1, h2 = pooled.chunk(2)
        return self.heads(h1, h2, self.uml.skl_weight)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        views = {k: inputs.pop(k) for k in ("view_input_ids", "view_attention_mask") if k in inputs}
        result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if not self.uml.lam or not views:
            return result
        terms = self.multiview_terms(model, views["view_input_ids"], views["view_attention_mask"])
        mode = "train" if self.model.training else "eval"
        for name, value in terms.items():
            self._metrics[mode][f"uml_{name}"].append(self.accelerator.gather_for_metrics(value.detach()).mean().item())
        if return_outputs:
            loss, outputs = result
            return loss + self.uml.lam * terms["loss"], outputs
        return result + self.uml.lam * terms["loss"]
