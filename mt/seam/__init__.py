"""SEAM (arXiv 2406.07971): how far a reward model misjudges what a policy is likely to say.

See ``metric.py`` for what is verified and what is reconstructed, ``sources.py`` for the worse
answers, ``run.py`` for the end-to-end computation and ``use.py`` for selection and augmentation.
"""

from .data import check_rows, load_rows
from .metric import MODES, RECONSTRUCTION_NOTE, prompt_seam, summarise
from .run import SeamConfig, compute_seam, score_rows, seam_diagnostic
from .sources import SOURCES, WorseAnswers, build_worse
from .use import augmentation_pairs, random_augmentation, seam_augmentation, select_prompts

__all__ = [
    "MODES", "RECONSTRUCTION_NOTE", "SOURCES", "SeamConfig", "WorseAnswers", "augmentation_pairs", "build_worse",
    "check_rows", "compute_seam", "load_rows", "prompt_seam", "random_augmentation", "score_rows",
    "seam_augmentation", "seam_diagnostic", "select_prompts", "summarise",
]
