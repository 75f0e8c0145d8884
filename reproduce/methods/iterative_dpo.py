"""Iterative DPO with a fixed RM (RLHF Workflow, Dong et al. 2024; RLHFlow/Online-RLHF).

Per iteration: K samples from pi_{t-1} on its part, scored by the fixed r_0, highest vs lowest,
DPO from pi_{t-1}. Three iterations over the three parts; the RM is never updated; no selection.
Mutual-Taught's own parts do all of it: the method is its config changes.
"""

from .registry import MethodSpec, register

ITERATIVE_DPO = ("estep.pair_rule=max_min", "select.enabled=false", "mstep.enabled=false", "run.iterations=3",
                 "data.pm_parts=[1, 2, 3]")

register(MethodSpec(
    "iterative-dpo",
    "K samples per prompt, highest vs lowest reward under the fixed r_0, DPO from pi_{t-1}; 3 iterations.",
    "Dong et al., RLHF Workflow: From Reward Modeling to Online RLHF, TMLR 2024 (RLHFlow/Online-RLHF)",
    overrides=ITERATIVE_DPO,
))
