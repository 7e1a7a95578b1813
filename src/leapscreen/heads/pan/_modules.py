"""The torch module of the neural pan heads (this module imports torch: import it lazily).

See :mod:`leapscreen.heads.pan._network` for the architecture and its training loop. The class is
defined at module level so that fitted heads pickle like any scikit-learn estimator (leapscreen
itself never pickles: weights are saved as arrays).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["PanNetwork"]


def _tower(width: int, layers: tuple[int, ...], dropout: float) -> nn.Module:
    parts: list[nn.Module] = []
    for i, out in enumerate(layers):
        parts += ([nn.Dropout(dropout)] if i else []) + [nn.Linear(width, out), nn.ReLU()]
        width = out
    return nn.Sequential(*parts)


class PanNetwork(nn.Module):
    """Two towers joined by dense layers; ``forward`` scores the pairs (rows, cols)."""

    def __init__(
        self,
        n_features: int,
        width: int,
        n_embedded: int,
        sample_layers: tuple[int, ...],
        perturbation_layers: tuple[int, ...],
        joint_layers: tuple[int, ...],
        dropout: float,
    ) -> None:
        super().__init__()
        self.sample = _tower(n_features, sample_layers, dropout)
        self.perturbation = _tower(width, perturbation_layers, dropout)
        ds = sample_layers[-1] if sample_layers else n_features
        dp = perturbation_layers[-1] if perturbation_layers else width
        self.join_sample = nn.Linear(ds, joint_layers[0])
        self.join_perturbation = nn.Linear(dp, joint_layers[0], bias=False)
        self.drop = nn.Dropout(dropout)
        rest: list[nn.Module] = []
        for a, b in zip(joint_layers[:-1], joint_layers[1:], strict=True):
            rest += [nn.ReLU(), nn.Linear(a, b)]
        rest += [nn.ReLU(), nn.Linear(joint_layers[-1], 1)]
        self.joint = nn.Sequential(*rest)
        self.embedding = nn.Parameter(torch.randn(n_embedded, width))

    def inputs(self, desc: Any, emb_index: Any) -> Any:
        """Perturbation inputs: the descriptor, or the embedding where ``emb_index >= 0``."""
        if desc is None:
            return self.embedding[emb_index.clamp(min=0)]
        if self.embedding.shape[0] == 0:
            return desc
        emb = self.embedding[emb_index.clamp(min=0)]
        return torch.where((emb_index >= 0)[:, None], emb, desc)

    def parts(self, z: Any, v: Any) -> tuple[Any, Any]:
        """Per-sample and per-perturbation halves of the joining layer."""
        a = self.join_sample(self.drop(self.sample(z)))
        return a, self.join_perturbation(self.drop(self.perturbation(v)))

    def forward(self, z: Any, v: Any, rows: Any, cols: Any) -> Any:
        """Output of the pairs ``(rows[i], cols[i])`` of the samples ``z`` and inputs ``v``."""
        a, b = self.parts(z, v)
        return self.joint(a[rows] + b[cols]).squeeze(-1)
