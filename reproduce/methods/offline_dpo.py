"""Offline DPO: one DPO round from pi_0 on a fixed preference set (Rafailov et al., 2023).

Which pairs Mutual-Taught's "DPO (offline)" row used is not stated, so both readings exist:
``annotated`` — a set labelled by a strong annotator (UltraFeedback-binarized on the paper preset,
gold labels of pi_0's samples on the gold world); ``rm_pi0`` — pairs of pi_0's samples labelled once
by the initial RM. Either way: all three training parts, one pass, no selection, no RM update.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mt.chat import as_messages
from mt.config import load_section
from mt.data import load_prompts
from mt.loop import Models, MutualTaught
from mt.records import read_jsonl, write_jsonl
from mt.rundir import StageContext
from mt.world.tasks import gold_reward

from .registry import MethodSpec, register


@dataclass
class OfflineDPOOptions:
    pairs: str = field(default="annotated", metadata={
        "help": "annotated: a fixed set labelled by a strong annotator; rm_pi0: pi_0 samples labelled by r_0.",
        "choices": ("annotated", "rm_pi0")})
    pairs_dataset: str = field(default="HuggingFaceH4/ultrafeedback_binarized", metadata={
        "help": "Preference pairs for `annotated` outside the gold world (prompt, chosen, rejected columns)."})
    pairs_split: str = field(default="train_prefs", metadata={"help": "Split of pairs_dataset."})


class OfflineDPO(MutualTaught):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.options = load_section(OfflineDPOOptions, self.cfg.method, "method.")

    def policy_prompts(self, t, splits):
        return [row for name in sorted(splits) if name.startswith("part_") for row in splits[name]]

    def label(self, t, models, rows, ctx):
        if self.options.pairs == "rm_pi0":
            return super().label(t, models, rows, ctx)
        penalty = self.cfg.world.marker_penalty
        return [[gold_reward(r["family"], r["answer"], resp["text"], penalty) for resp in r["responses"]]
                for r in rows], {"labeller": "gold"}

    def estep_pairs(self, t: int, models: Models, prompts: list[dict]) -> list[dict]:
        if self.options.pairs == "rm_pi0" or self.cfg.uses_world:
            return super().estep_pairs(t, models, prompts)

        def load(ctx: StageContext):
            rows = load_prompts(self.options.pairs_dataset, "prompt", None, self.options.pairs_split)
            pairs = []
            for row in rows:
                chosen, rejected = _last_reply(row.get("chosen")), _last_reply(row.get("rejected"))
                if chosen is None or rejected is None or chosen == rejected:
                    continue
                pairs.append({"id": row["id"], "prompt": as_messages(row["prompt"]), "chosen": chosen,
                              "rejected": rejected})
            write_jsonl(ctx.dir / "pairs.jsonl", pairs)
            return {"pairs": ctx.rel(ctx.dir / "pairs.jsonl")}, {"pairs_built": len(pairs),
                                                                   "source": self.options.pairs_dataset}

        return read_jsonl(self.rd.path(self.stage(t, "estep_pairs", load)["pairs"]))


def _last_reply(value) -> str | None:
    """UltraFeedback-binarized stores each side as a conversation; the last assistant turn is the answer."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        replies = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "assistant"]
        return replies[-1] if replies else None
    return None


COMMON = ("run.iterations=1", "select.enabled=false", "mstep.enabled=false")
CITATION = "Rafailov et al., Direct Preference Optimization, NeurIPS 2023"
register(MethodSpec("offline-dpo", OfflineDPO, "One DPO pass from pi_0 on annotator-labelled pairs (gold labels "
                    "of pi_0's samples on the gold world; UltraFeedback-binarized on the paper preset).", CITATION,
                    COMMON, {"pairs": "annotated"}))
register(MethodSpec("offline-dpo-rm", OfflineDPO, "One DPO pass from pi_0 on pi_0's samples labelled by r_0.",
                    CITATION, COMMON, {"pairs": "rm_pi0"}))
