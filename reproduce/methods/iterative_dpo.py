"""Iterative DPO with a fixed RM (RLHF Workflow, Dong et al. 2024; RLHFlow/Online-RLHF).

Per iteration: K samples from pi_{t-1} on its part, scored by the fixed r_0, highest vs lowest,
DPO from pi_{t-1}. Three iterations over the three parts; the RM is never updated; no selection.
"""

from mt.loop import MutualTaught

from .registry import MethodSpec, register

ITERATIVE_DPO = ("estep.pair_rule=max_min", "select.enabled=false", "mstep.enabled=false", "run.iterations=3",
                 "data.pm_parts=[1, 2, 3]")

register(MethodSpec(
    "iterative-dpo", MutualTaught,
    "K samples per prompt, highest vs lowest reward under the fixed r_0, DPO from pi_{t-1}; 3 iterations.",
    "Dong et al., RLHF Workflow: From Reward Modeling to Online RLHF, TMLR 2024 (RLHFlow/Online-RLHF)",
    ITERATIVE_DPO,
))
