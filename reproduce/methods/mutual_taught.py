"""Mutual-Taught and the three ablations of its Table 3: each switches one mechanism off."""

from mt.loop import MutualTaught

from .registry import MethodSpec, register

CITATION = "Shi et al., Mutual-Taught for Co-adapting Policy and Reward Models, ACL 2025 (arXiv 2506.06292)"

register(MethodSpec("mutual-taught", MutualTaught, "E-step DPO on RM-labelled pairs, checkpoint selection and "
                    "stop rule, M-step RM update on filtered pseudo-pairs.", CITATION))
register(MethodSpec("mt-no-rm-update", MutualTaught, "Mutual-Taught with the RM frozen at r_0 (ablation).",
                    CITATION, ("mstep.enabled=false",)))
register(MethodSpec("mt-no-selection", MutualTaught, "Mutual-Taught keeping the last DPO checkpoint, no stop rule "
                    "(ablation).", CITATION, ("select.enabled=false",)))
register(MethodSpec("mt-no-filter", MutualTaught, "Mutual-Taught training the RM on every pseudo-pair "
                    "(ablation).", CITATION, ("mstep.filter=false",)))
