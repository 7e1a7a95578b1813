"""pan-tDNN: the two-tower network of the DeepDEP / ETL family as a pan-perturbation head.

A sample encoder (dense layers on ``z``) and a perturbation encoder (dense layers on the
descriptor, or a learned embedding in its place) whose outputs are concatenated and passed through
dense layers to the response. Training, early stopping, folds and saved state are those of
:class:`~leapscreen.heads.pan.mlp.NeuralPanHead` (one training loop for both neural heads).
"""

from __future__ import annotations

from typing import Any

from leapscreen.heads.pan._base import _layers
from leapscreen.heads.pan.mlp import NeuralPanHead
from leapscreen.registry import register_head

__all__ = ["PanTDNNHead"]


@register_head("pan-tdnn")
class PanTDNNHead(NeuralPanHead):
    """Pan-perturbation tDNN: sample encoder + perturbation encoder, concatenated, dense layers.

    Parameters
    ----------
    sample_layers : tuple of int, default (128, 64)
        The sample encoder (DeepDEP encodes expression to 50 units).
    perturbation_layers : tuple of int, default (128, 64)
        The perturbation (descriptor) encoder.
    hidden_layers : tuple of int, default (128,)
        Dense layers after the concatenation of the two encodings.

    All other parameters and the attributes are those of
    :class:`~leapscreen.heads.pan.mlp.PanMLPHead`.
    """

    def __init__(
        self,
        descriptors: Any = None,
        sample_layers: tuple[int, ...] = (128, 64),
        perturbation_layers: tuple[int, ...] = (128, 64),
        hidden_layers: tuple[int, ...] = (128,),
        dropout: float = 0.1,
        loss: str = "mse",
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        batch_samples: int = 64,
        max_epochs: int = 40,
        patience: int = 5,
        val_fraction: float = 0.15,
        embedding_dim: int = 32,
        n_folds: int = 5,
        random_state: int | None = 0,
        device: str = "cpu",
    ) -> None:
        self.descriptors = descriptors
        self.sample_layers = sample_layers
        self.perturbation_layers = perturbation_layers
        self.hidden_layers = hidden_layers
        self.dropout = dropout
        self.loss = loss
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_samples = batch_samples
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.embedding_dim = embedding_dim
        self.n_folds = n_folds
        self.random_state = random_state
        self.device = device

    def _architecture(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        owner = type(self).__name__
        return (
            _layers(owner, "sample_layers", self.sample_layers, allow_empty=True),
            _layers(owner, "perturbation_layers", self.perturbation_layers, allow_empty=True),
            _layers(owner, "hidden_layers", self.hidden_layers, allow_empty=False),
        )
