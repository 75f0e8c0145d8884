"""RLP (arXiv 2403.19279, no released code): reward learning on policy samples, as two components.

``spg`` builds RLP-SPG's synthetic pairs from clustered policy samples (judges in ``judges``);
``uml`` trains the RM with RLP-UML's multi-view loss (``multiview``) inside TRL's RewardTrainer.
"""

from .judges import JUDGES, EquivalenceJudge, load_judge
from .spg import SPGConfig, cluster_labels, spg_pairs

__all__ = ["JUDGES", "EquivalenceJudge", "SPGConfig", "cluster_labels", "load_judge", "spg_pairs"]
