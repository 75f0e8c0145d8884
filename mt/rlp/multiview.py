"""The multi-view information bottleneck loss of RLP-UML, on the RM's representation of two views.

RLP (arXiv 2403.19279) treats two policy samples of one prompt as two views. Each view's RM
representation h goes through its own 3-layer MLP encoder giving a diagonal Gaussian p(z | v);
the loss, following Federici et al. (ICLR 2020, "Learning Robust Representations via Multi-View
Information Bottleneck"), is

    L_M = -I(z1; z2) + D_SKL(p(z1 | v1) || p(z2 | v2)),

with I estimated by the Jensen-Shannon bound of a learned critic T (Hjelm et al., Deep InfoMax):
I_JS = E_joint[-softplus(-T(z1, z2))] - E_marginals[softplus(T(z1, z2'))], where the negatives z2'
are z2 shuffled within the batch. The symmetrised KL is the closed form for diagonal Gaussians,
averaged over both directions. Pooling token and z size are not in the paper (reconstructed:
last real token, z = 32).

The paper's L_M weighs the KL by 1. Federici et al. instead raise that weight (their beta) from
about 1e-3 to 1 during training. On toy views (h2 = h1 + noise, 8 dimensions, 300 Adam steps) the
weight decides everything: at 1 or 0.1 the two encoders collapse to one uninformative posterior in
every seed we tried (I_JS -> -2 log 2, KL -> 0, after which L_M is constant and gives no gradient),
at 0.01 in three seeds of five, at 0.001 in none. ``skl_weight`` is exposed for that reason; its
default is the paper's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class GaussianEncoder(nn.Module):
    """h -> (mean, std) of a diagonal Gaussian over z, through three linear layers."""

    def __init__(self, in_dim: int, z_dim: int = 32, hidden: int = 256):
        super().__init__()
        self.net = mlp([in_dim, hidden, hidden, 2 * z_dim])

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = self.net(h).chunk(2, dim=-1)
        return mean, F.softplus(raw) + 1e-7


def gaussian_kl(mean1: torch.Tensor, std1: torch.Tensor, mean2: torch.Tensor, std2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, std1^2) || N(mean2, std2^2)) per row, summed over dimensions."""
    var1, var2 = std1 ** 2, std2 ** 2
    return (torch.log(std2 / std1) + (var1 + (mean1 - mean2) ** 2) / (2 * var2) - 0.5).sum(-1)


def symmetric_kl(mean1, std1, mean2, std2) -> torch.Tensor:
    """(KL(p1 || p2) + KL(p2 || p1)) / 2 per row: zero exactly when the two posteriors coincide."""
    return (gaussian_kl(mean1, std1, mean2, std2) + gaussian_kl(mean2, std2, mean1, std1)) / 2


def js_mutual_information(joint_scores: torch.Tensor, marginal_scores: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon lower-bound estimate of I(z1; z2) from critic scores of joint and shuffled pairs."""
    return (-F.softplus(-joint_scores)).mean() - F.softplus(marginal_scores).mean()


def shuffled(z: torch.Tensor) -> torch.Tensor:
    """The batch rolled by a random nonzero shift: every row meets another row's partner (needs 2+ rows)."""
    shift = int(torch.randint(1, z.shape[0], (1,)).item())
    return torch.roll(z, shifts=shift, dims=0)


class MultiViewHeads(nn.Module):
    """Two Gaussian encoders (one per view) and the MI critic; training-only, never part of the saved RM."""

    def __init__(self, in_dim: int, z_dim: int = 32, hidden: int = 256):
        super().__init__()
        self.encoder1 = GaussianEncoder(in_dim, z_dim, hidden)
        self.encoder2 = GaussianEncoder(in_dim, z_dim, hidden)
        self.critic = mlp([2 * z_dim, hidden, hidden, 1])

    def score(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return self.critic(torch.cat([z1, z2], dim=-1)).squeeze(-1)

    def forward(self, h1: torch.Tensor, h2: torch.Tensor, skl_weight: float = 1.0) -> dict[str, torch.Tensor]:
        """L_M = -I_JS(z1; z2) + skl_weight * mean symmetrised KL, and both terms, for (batch, in_dim) inputs."""
        mean1, std1 = self.encoder1(h1)
        mean2, std2 = self.encoder2(h2)
        z1 = mean1 + std1 * torch.randn_like(std1)  # reparameterised samples
        z2 = mean2 + std2 * torch.randn_like(std2)
        skl = symmetric_kl(mean1, std1, mean2, std2).mean()
        if z1.shape[0] < 2:  # no negatives in a batch of one: only the KL term is defined
            mi = torch.zeros((), device=z1.device)
        else:
            mi = js_mutual_information(self.score(z1, z2), self.score(z1, shuffled(z2)))
        return {"loss": -mi + skl_weight * skl, "mi": mi, "skl": skl}
