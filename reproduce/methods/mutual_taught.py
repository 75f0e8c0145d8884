"""Mutual-Taught, the three ablations of its Table 3, two reconstructed choices as ablations, two controls
of its M-step and the ceiling of any RM update.

Each ablation switches one mechanism off. The M-step controls keep every pair the M-step would train on
and change only who orients it: gold (an oracle) or a coin flip. The ceiling labels the E-step's samples
and judges its checkpoints by gold: no reward model, however it is updated, does either better.
"""

from dataclasses import replace

from mt.estep import gold_labels
from mt.method import MUTUAL_TAUGHT
from mt.select import gold_judge

from .registry import MethodSpec, register

CITATION = "Shi et al., Mutual-Taught for Co-adapting Policy and Reward Models, ACL 2025 (arXiv 2506.06292)"

register(MethodSpec("mutual-taught", "E-step DPO on RM-labelled pairs, checkpoint selection and stop rule, "
                    "M-step RM update on filtered pseudo-pairs.", CITATION))
register(MethodSpec("mt-no-rm-update", "Mutual-Taught with the RM frozen at r_0 (ablation).", CITATION,
                    overrides=("mstep.enabled=false",)))
register(MethodSpec("mt-no-selection", "Mutual-Taught keeping the last DPO checkpoint, no stop rule (ablation).",
                    CITATION, overrides=("select.enabled=false",)))
register(MethodSpec("mt-no-filter", "Mutual-Taught training the RM on every pseudo-pair (ablation).", CITATION,
                    overrides=("mstep.filter=false",)))
register(MethodSpec("mt-filter-margin-std", "Mutual-Taught whose filter takes eps_t as the std of the margins "
                    "(the other reading of the paper; ablation). On the gold world the default reading's eps_t is "
                    "wide enough to drop almost nothing.", CITATION, overrides=("mstep.eps=margin_std",)))
register(MethodSpec("mt-with-estep-pairs", "Mutual-Taught whose RM also trains on the E-step's RM-labelled pairs "
                    "(a reading the paper leaves open; ablation).", CITATION,
                    overrides=("mstep.include_estep_pairs=true",)))
register(MethodSpec("mt-oracle-rm", "Mutual-Taught whose M-step pairs are oriented by the gold reward (control: "
                    "the most an M-step on these pairs can add; gold world only).", CITATION,
                    overrides=("mstep.labels=gold",)))
register(MethodSpec("mt-random-rm", "Mutual-Taught whose M-step pairs are oriented at random (control: an "
                    "M-step that carries no information).", CITATION, overrides=("mstep.labels=random",)))
register(MethodSpec("mt-gold-labels", "Mutual-Taught whose E-step samples are labelled, and checkpoints judged, "
                    "by the gold reward; no RM update (control: what a perfect RM would give this loop, the most "
                    "any RM update can add; gold world only).", CITATION,
                    build=lambda options: replace(MUTUAL_TAUGHT, label=gold_labels, judge=gold_judge),
                    overrides=("mstep.enabled=false",), needs_gold=True))
