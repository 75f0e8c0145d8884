"""Offline DPO: one DPO round from pi_0 on a fixed preference set (Rafailov et al., 2023).

Which pairs Mutual-Taught's "DPO (offline)" row used is not stated, so both readings exist:
``annotated`` — a set labelled by a strong annotator (the environment's gold reward on pi_0's samples
where it has one, as the gold world does; otherwise a preference dataset, UltraFeedback-binarized by
default); ``rm_pi0`` — pairs of pi_0's samples labelled once by the initial RM. Either way: all three
training parts, one pass, no selection, no RM update.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mt.chat import as_messages
from mt.data import load_prompts
from mt.engine import Models
from mt.estep import SampledPairs, gold_labels
from mt.method import Method, Run
from mt.records import read_jsonl, write_jsonl
from mt.rundir import StageContext

from .registry import MethodSpec, register


@dataclass
class OfflineDPOOptions:
    pairs: str = field(default="annotated", metadata={
        "help": "annotated: a fixed set labelled by a strong annotator; rm_pi0: pi_0 samples labelled by r_0.",
        "choices": ("annotated", "rm_pi0")})
    pairs_dataset: str = field(default="HuggingFaceH4/ultrafeedback_binarized", metadata={
        "help": "Preference pairs for `annotated` where the environment has no gold reward (prompt, chosen, "
                "rejected columns)."})
    pairs_split: str = field(default="train_prefs", metadata={"help": "Split of pairs_dataset."})


def all_parts(run: Run, t: int, models: Models, splits: dict[str, list[dict]]) -> list[dict]:
    """Every training part at once: the method has a single round."""
    return [row for name in sorted(splits) if name.startswith("part_") for row in splits[name]]


@dataclass(frozen=True)
class AnnotatedPairs:
    """Gold-labelled pi_0 samples where a gold reward exists; otherwise the preference dataset's pairs."""

    options: OfflineDPOOptions

    def __call__(self, run: Run, method: Method, t: int, models: Models, prompts: list[dict]) -> list[dict]:
        if run.env.gold is not None:
            return SampledPairs()(run, method, t, models, prompts)
        o = self.options

        def load(ctx: StageContext):
            pairs = []
            for row in load_prompts(o.pairs_dataset, "prompt", None, o.pairs_split):
                chosen, rejected = _last_reply(row.get("chosen")), _last_reply(row.get("rejected"))
                if chosen is None or rejected is None or chosen == rejected:
                    continue
                pairs.append({"id": row["id"], "prompt": as_messages(row["prompt"]), "chosen": chosen,
                              "rejected": rejected})
            write_jsonl(ctx.dir / "pairs.jsonl", pairs)
            return {"pairs": ctx.rel(ctx.dir / "pairs.jsonl")}, {"pairs_built": len(pairs), "source": o.pairs_dataset}

        return read_jsonl(run.engine.rd.path(run.engine.stage(t, "estep_pairs", load)["pairs"]))


def _last_reply(value) -> str | None:
    """UltraFeedback-binarized stores each side as a conversation; the last assistant turn is the answer."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        replies = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "assistant"]
        return replies[-1] if replies else None
    return None


def build(options: OfflineDPOOptions) -> Method:
    if options.pairs == "rm_pi0":
        return Method(policy_prompts=all_parts)
    return Method(policy_prompts=all_parts, pair_source=AnnotatedPairs(options), label=gold_labels)


COMMON = ("run.iterations=1", "select.enabled=false", "mstep.enabled=false")
CITATION = "Rafailov et al., Direct Preference Optimization, NeurIPS 2023"
register(MethodSpec("offline-dpo", "One DPO pass from pi_0 on annotator-labelled pairs (gold labels of pi_0's "
                    "samples on the gold world; UltraFeedback-binarized on the paper preset).", CITATION, build,
                    COMMON, OfflineDPOOptions, {"pairs": "annotated"}))
register(MethodSpec("offline-dpo-rm", "One DPO pass from pi_0 on pi_0's samples labelled by r_0.", CITATION, build,
                    COMMON, OfflineDPOOptions, {"pairs": "rm_pi0"}))
