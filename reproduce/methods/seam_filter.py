"""SEAM data selection (arXiv 2406.07971): drop the prompts the current PM/RM pair misjudges most.

Iterative DPO with a fixed RM, except that before each E-step the part's prompts are scored by
SEAM between the current policy and RM and the top ``fraction`` is dropped; the control drops the
same number at random. The paper reports +4.5% for the SEAM selection without stating the fraction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mt.engine import Models
from mt.method import Method, Run, part_prompts
from mt.records import read_jsonl, write_jsonl
from mt.rundir import StageContext
from mt.seam import SeamConfig, score_rows, select_prompts

from .iterative_dpo import ITERATIVE_DPO
from .registry import MethodSpec, register

CITATION = "Lu et al., It Takes Two: On the Seamlessness between Reward and Policy Model in RLHF (arXiv 2406.07971)"


@dataclass
class SeamFilterOptions:
    fraction: float = field(default=0.2, metadata={"help": "Share of each part's prompts dropped (not stated).",
                                                    "reconstructed": True, "ge": 0, "lt": 1})
    selection: str = field(default="seam", metadata={"help": "seam: drop the highest SEAM; random: the control.",
                                                     "choices": ("seam", "random")})
    source: str = field(default="corrupt", metadata={"help": "SEAM's worse-answer source (see mt-repro seam)."})


@dataclass(frozen=True)
class SeamPrompts:
    """The iteration's part minus the prompts SEAM (or the random control) drops, as a stage of its own."""

    options: SeamFilterOptions

    def __call__(self, run: Run, t: int, models: Models, splits: dict[str, list[dict]]) -> list[dict]:
        o, prompts = self.options, part_prompts(run, t, models, splits)

        def select(ctx: StageContext):
            records, provenance = score_rows(models.policy, models.reward, prompts,
                                             SeamConfig(source=o.source, seed=ctx.seed))
            kept, dropped = select_prompts({r["id"]: r["seam"] for r in records}, o.fraction, o.selection,
                                           ctx.seed)
            keep = set(kept)
            write_jsonl(ctx.dir / "prompts.jsonl", [p for p in prompts if p["id"] in keep])
            mean = lambda ids: sum(r["seam"] for r in records if r["id"] in ids) / max(1, len(ids))  # noqa: E731
            return {"prompts": ctx.rel(ctx.dir / "prompts.jsonl")}, {
                "selection": o.selection, "fraction": o.fraction, "kept": len(kept), "dropped": len(dropped),
                "seam_kept_mean": mean(keep), "seam_dropped_mean": mean(set(dropped)), **provenance}

        return read_jsonl(run.engine.rd.path(run.engine.stage(t, "seam_filter", select)["prompts"]))


def build(options: SeamFilterOptions) -> Method:
    return Method(policy_prompts=SeamPrompts(options))


register(MethodSpec("iterative-dpo-seam-filter", "Iterative DPO on each part minus its highest-SEAM prompts.",
                    CITATION, build, ITERATIVE_DPO, SeamFilterOptions, {"selection": "seam"}))
register(MethodSpec("iterative-dpo-random-filter", "Iterative DPO on each part minus as many random prompts "
                    "(the control).", CITATION, build, ITERATIVE_DPO, SeamFilterOptions, {"selection": "random"}))
