"""Autoencoder representations: plain, masked (VIME-style) and DAMAE (pooled, aligned sources).

Architecture: an encoder ``d -> hidden... -> latent`` and a mirrored decoder, ReLU between hidden
layers, no activation on the latent or the output. With ``hidden_dims=()`` (the default, as in the
released LEAP) each is one affine layer, the encoder is an affine map and :meth:`linear_map` gives
it exactly.

Training (why not the reference schedule): the reference uses Adam at lr 1e-4 with batches of 1,024,
i.e. one optimiser step per epoch on ~900 samples, for up to 1,000 epochs, and never stops early.
Here Adam (fused) takes mini-batches of ``batch_size`` (64: 12 steps per epoch on 780 samples) at
a peak learning rate of 3e-3, with a linear warm-up over ``warmup_epochs`` and a cosine decay to
zero at ``max_epochs``. Measured on GDSC (780 lines x 5,000 genes, latent 256, 2 threads;
``benchmarks/bench_represent.py``): 14-17 s per seed and a held-out masked loss of 0.441, against
330-515 s and 0.447 for the reference schedule (0.548 after 300 epochs); the exact optimum of the
masked linear objective scores 0.424. The learning rate is a function of the (fractional) epoch
only, so the retrain on all data for the best epoch count follows exactly the schedule the
validation run followed up to that epoch:

1. a seeded split holds out ``val_fraction`` of the samples; training stops when the validation
   loss (the training objective on a corruption of the validation set drawn once) has not improved
   for ``patience`` epochs; ``best_epoch_`` is the epoch of the lowest validation loss;
2. the network is re-initialised (same seed) and trained on all samples for ``best_epoch_``
   epochs (``retrain=False`` keeps the best validation-phase weights instead).

Every random draw (initial weights, split, batch order, masks, noise) comes from generators seeded
with ``random_state``: the same seed gives the same weights, and different seeds differ in
initialisation and corruption, which is the diversity the LEAP ensemble averages over.

Speed note: torch's OpenMP threads spin while they wait; when another process shares the cores
this makes training 5-10x slower. Setting ``OMP_WAIT_POLICY=PASSIVE`` in the environment before
torch is imported avoids it (the benchmark does so).

Layout: the torch network, corruption and schedule are in :mod:`._network`, the training loop in
:mod:`._training`; this module holds the estimators and imports torch only when one is fitted,
used or loaded.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from leapscreen.base import BaseRepresentation
from leapscreen.registry import register_representation
from leapscreen.represent._common import (
    PooledFitMixin,
    check_fitted,
    stack_unlabelled,
    validate_input,
)
from leapscreen.represent.align import SourceAligner, as_labels

if TYPE_CHECKING:  # pragma: no cover
    from leapscreen.represent._network import AENet
    from leapscreen.represent._training import TrainConfig

logger = logging.getLogger(__name__)

#: Source label of the screened samples of a :class:`DAMAE` when none is given.
PRIMARY_SOURCE = "screen"

# vime_corrupt is also exported, lazily (see __getattr__)
__all__ = ["DAMAE", "PRIMARY_SOURCE", "Autoencoder", "MaskedAutoencoder"]


def __getattr__(name: str) -> Any:
    """``vime_corrupt`` is imported from the torch module on first use (torch stays unloaded)."""
    if name == "vime_corrupt":
        from leapscreen.represent._network import vime_corrupt

        return vime_corrupt
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@register_representation("ae")
class Autoencoder(PooledFitMixin, BaseRepresentation):
    """Autoencoder of scaled expression (optionally masked and noised), trained with torch.

    Parameters
    ----------
    latent_dim : int, default 256
    hidden_dims : sequence of int, default ()
        Hidden layer widths of the encoder (mirrored in the decoder); empty = affine encoder.
    mask_prob : float, default 0.0
        VIME masking probability (see :func:`vime_corrupt`); the loss is MSE against the clean
        input.
    noise_std : float, default 0.0
        Standard deviation of Gaussian noise added to the (masked) input.
    lr : float, default 3e-3
        Peak Adam learning rate.
    batch_size : int, default 64
        Mini-batch size (batches are balanced, never smaller than this unless the data are).
    max_epochs : int, default 50
        Epochs of the validation run and horizon of the cosine schedule.
    patience : int, default 10
        Epochs without improvement of the validation loss before stopping.
    val_fraction : float, default 0.2
        Fraction of samples held out for early stopping (0: no validation, ``max_epochs`` epochs).
    weight_decay : float, default 0.0
        Adam L2 penalty.
    random_state : int, default 0
        Seed of every draw (LEAP sets one per ensemble member).
    device : str, default "cpu"
        Torch device of training and inference (a loaded model can be given another one).
    warmup_epochs : float, default 2.0
        Linear learning-rate warm-up.
    retrain : bool, default True
        Retrain on all samples for ``best_epoch_`` epochs (the reference's procedure); False keeps
        the best weights of the validation run.
    min_delta : float, default 1e-4
        Relative decrease of the validation loss that counts as an improvement.
    schedule : {"cosine", "constant"}, default "cosine"
        Learning rate after the warm-up: cosine decay to 0 at ``max_epochs``, or constant
        (the reference's schedule is ``lr=1e-4, batch_size=1024, max_epochs=1000, patience=20,
        warmup_epochs=0, schedule="constant"``).

    ``fit(X, y=None, *, X_unlabelled=None, ...)`` trains on ``X`` and ``X_unlabelled`` pooled;
    ``y`` and source labels are ignored (see :class:`DAMAE` for sources).

    Attributes
    ----------
    history_ : dict
        ``"train"`` and ``"val"``: per-epoch training and validation loss of the validation run;
        ``"refit"``: per-epoch training loss of the retrain on all samples.
    best_epoch_ : int or None
        Epoch (1-based) of the lowest validation loss; None without validation.
    n_epochs_ : int
        Epochs the final weights were trained for.
    stopped_early_ : bool
        Whether the validation run stopped before ``max_epochs``.
    n_features_in_ : int
    """

    def __init__(
        self,
        latent_dim: int = 256,
        hidden_dims: Sequence[int] = (),
        mask_prob: float = 0.0,
        noise_std: float = 0.0,
        lr: float = 3e-3,
        batch_size: int = 64,
        max_epochs: int = 50,
        patience: int = 10,
        val_fraction: float = 0.2,
        weight_decay: float = 0.0,
        random_state: int = 0,
        device: str = "cpu",
        warmup_epochs: float = 2.0,
        retrain: bool = True,
        min_delta: float = 1e-4,
        schedule: str = "cosine",
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.mask_prob = mask_prob
        self.noise_std = noise_std
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device
        self.warmup_epochs = warmup_epochs
        self.retrain = retrain
        self.min_delta = min_delta
        self.schedule = schedule

    # ------------------------------------------------------------------ helpers
    @property
    def is_linear(self) -> bool:  # type: ignore[override]
        """Whether the encoder is one affine layer (then :meth:`linear_map` is exact)."""
        return len(tuple(self.hidden_dims)) == 0

    def _config(self) -> TrainConfig:
        """The checked training settings."""
        if int(self.latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if any(int(h) < 1 for h in self.hidden_dims):
            raise ValueError(f"hidden_dims must be positive, got {self.hidden_dims}")
        if not 0.0 <= float(self.mask_prob) < 1.0:
            raise ValueError(f"mask_prob must lie in [0, 1), got {self.mask_prob}")
        if float(self.noise_std) < 0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std}")
        if int(self.batch_size) < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if int(self.max_epochs) < 1 or int(self.patience) < 1:
            raise ValueError("max_epochs and patience must be >= 1")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if float(self.lr) <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        from leapscreen.represent._training import TrainConfig

        return TrainConfig(
            latent_dim=int(self.latent_dim),
            hidden_dims=tuple(int(h) for h in self.hidden_dims),
            mask_prob=float(self.mask_prob),
            noise_std=float(self.noise_std),
            lr=float(self.lr),
            batch_size=int(self.batch_size),
            max_epochs=int(self.max_epochs),
            patience=int(self.patience),
            val_fraction=float(self.val_fraction),
            weight_decay=float(self.weight_decay),
            random_state=int(self.random_state),
            device=str(self.device),
            warmup_epochs=float(self.warmup_epochs),
            retrain=bool(self.retrain),
            min_delta=float(self.min_delta),
            schedule=str(self.schedule),
        )

    def _validate(self, X: Any, *, reset: bool) -> np.ndarray:
        return validate_input(self, X, reset=reset, dtype=np.float32)

    def _fit_matrix(self, X: np.ndarray) -> None:
        """Train the network on a validated float32 matrix and set the fitted attributes."""
        cfg = self._config()
        from leapscreen.represent._training import train

        result = train(cfg, X)
        self._net = result.net
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.n_epochs_ = result.n_epochs
        self.stopped_early_ = result.stopped_early
        logger.info(
            "%s seed %s: %d epochs (best %s), final train loss %.4g",
            type(self).__name__,
            self.random_state,
            self.n_epochs_,
            self.best_epoch_,
            (self.history_["refit"] or self.history_["train"])[-1],
        )

    @property
    def net_(self) -> AENet:
        """The fitted torch network (encoder and decoder)."""
        check_fitted(self)
        return self._net

    # ------------------------------------------------------------------ fit / transform
    def _prepare(self, X: Any, sources: Any = None) -> np.ndarray:
        return self._validate(X, reset=False)

    def _apply(self, X: np.ndarray, decode: bool) -> np.ndarray:
        from leapscreen.represent._network import apply_module

        net = self._net
        module = net if decode else net.encoder
        return apply_module(net, module, X, str(self.device), int(self.latent_dim))

    def transform(self, X: Any) -> np.ndarray:
        """Encode samples (no gradient, in batches).

        Returns
        -------
        np.ndarray of float32, shape (n_samples, latent_dim)
        """
        return self._apply(self._prepare(X), decode=False)

    def reconstruct(self, X: Any) -> np.ndarray:
        """Decode the encoding of clean (uncorrupted) samples; same space as the input."""
        return self._apply(self._prepare(X), decode=True)

    def linear_map(self) -> tuple[np.ndarray, np.ndarray]:
        """The encoder as ``X @ W + b`` (affine encoders only).

        Returns
        -------
        W : np.ndarray of float64, shape (n_genes, latent_dim)
        b : np.ndarray of float64, shape (latent_dim,)
        """
        check_fitted(self)
        if not self.is_linear:
            raise ValueError("linear_map() needs an affine encoder (hidden_dims=())")
        layer = self._net.encoder[0]
        W = layer.weight.detach().cpu().numpy().astype(np.float64).T
        b = layer.bias.detach().cpu().numpy().astype(np.float64)
        return W, b

    # ------------------------------------------------------------------ persistence hooks
    def _extra_state(self) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """The network weights as CPU arrays (for :func:`leapscreen.base.get_state`)."""
        check_fitted(self)
        arrays = {k: v.detach().cpu().numpy().copy() for k, v in self._net.state_dict().items()}
        return arrays, {}

    def _load_extra_state(self, arrays: dict[str, np.ndarray], texts: dict[str, str]) -> None:
        """Rebuild the network from saved weights, on this estimator's ``device``."""
        import torch

        from leapscreen.represent._network import AENet

        net = AENet(
            int(self.n_features_in_), int(self.latent_dim), [int(h) for h in self.hidden_dims]
        )
        expected = net.state_dict()
        missing = sorted(set(expected) - set(arrays))
        unexpected = sorted(set(arrays) - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"{type(self).__name__} weights do not match the architecture: missing {missing}, "
                f"unexpected {unexpected}"
            )
        for k, v in arrays.items():
            if tuple(np.shape(v)) != tuple(expected[k].shape):
                raise ValueError(
                    f"{type(self).__name__} weight {k!r} has shape {tuple(np.shape(v))}, "
                    f"expected {tuple(expected[k].shape)}"
                )
        state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in arrays.items()}
        net.load_state_dict(state)
        self._net = net.to(torch.device(self.device)).eval()


def _base_params(values: dict[str, Any]) -> dict[str, Any]:
    """A subclass's ``__init__`` arguments that :class:`Autoencoder` takes (from ``locals()``)."""
    names = inspect.signature(Autoencoder.__init__).parameters
    return {k: v for k, v in values.items() if k in names and k != "self"}


@register_representation("mae")
class MaskedAutoencoder(Autoencoder):
    """:class:`Autoencoder` with VIME masking on by default (``mask_prob=0.3``)."""

    def __init__(
        self,
        latent_dim: int = 256,
        hidden_dims: Sequence[int] = (),
        mask_prob: float = 0.3,
        noise_std: float = 0.0,
        lr: float = 3e-3,
        batch_size: int = 64,
        max_epochs: int = 50,
        patience: int = 10,
        val_fraction: float = 0.2,
        weight_decay: float = 0.0,
        random_state: int = 0,
        device: str = "cpu",
        warmup_epochs: float = 2.0,
        retrain: bool = True,
        min_delta: float = 1e-4,
        schedule: str = "cosine",
    ) -> None:
        super().__init__(**_base_params(locals()))


@register_representation("damae")
class DAMAE(MaskedAutoencoder):
    """Data-augmented masked autoencoder: pretrained on pooled, per-source aligned expression.

    The screened samples ``X`` are pooled with unlabelled samples of other data sets
    (``X_unlabelled``, same gene columns, e.g. ``preprocessor.transform(other_expression)``), each
    source is aligned with :class:`~leapscreen.represent.align.SourceAligner`, and a masked
    autoencoder (optionally with Gaussian noise) is trained on the pool.

    ``fit(X, y=None, *, sources=None, X_unlabelled=None, sources_unlabelled=None)``: ``sources``
    label the rows of ``X`` (default all :data:`PRIMARY_SOURCE`), ``sources_unlabelled`` those of
    ``X_unlabelled`` (default all ``"extra"``); ``y`` is ignored, never taken for sources. The
    most frequent source of ``X`` becomes ``primary_source_``.

    Parameters
    ----------
    align : {"standardize", "combat", "none"}, default "standardize"
        Per-source alignment (the paper used ComBat).
    min_source_samples : int, default 10
        See :class:`SourceAligner` (unseen or small sources).
    **others
        As :class:`MaskedAutoencoder`.

    Attributes
    ----------
    aligner_ : SourceAligner
    primary_source_ : str
        Source assumed for samples passed to :meth:`transform` without labels.
    n_pooled_ : int
        Samples trained on (``X`` and ``X_unlabelled``).
    """

    def __init__(
        self,
        latent_dim: int = 256,
        hidden_dims: Sequence[int] = (),
        mask_prob: float = 0.3,
        noise_std: float = 0.0,
        lr: float = 3e-3,
        batch_size: int = 64,
        max_epochs: int = 50,
        patience: int = 10,
        val_fraction: float = 0.2,
        weight_decay: float = 0.0,
        random_state: int = 0,
        device: str = "cpu",
        warmup_epochs: float = 2.0,
        retrain: bool = True,
        min_delta: float = 1e-4,
        schedule: str = "cosine",
        align: str = "standardize",
        min_source_samples: int = 10,
    ) -> None:
        super().__init__(**_base_params(locals()))
        self.align = align
        self.min_source_samples = min_source_samples

    def _fit_validated(
        self, X: np.ndarray, sources: Any, X_unlabelled: Any, sources_unlabelled: Any
    ) -> None:
        """Align the pooled samples per source and train the masked autoencoder on them."""
        labels = as_labels(sources, X.shape[0], PRIMARY_SOURCE)
        values, counts = np.unique(labels, return_counts=True)
        primary = str(values[np.argmax(counts)])
        pooled = stack_unlabelled(self, X, X_unlabelled)
        pooled_labels = labels
        if X_unlabelled is not None:
            n_extra = pooled.shape[0] - X.shape[0]
            extra_labels = as_labels(sources_unlabelled, n_extra, "extra")
            pooled_labels = np.concatenate([labels, extra_labels])
        aligner = SourceAligner(self.align, min_source_samples=int(self.min_source_samples))
        aligned = aligner.fit_transform(pooled.astype(np.float64), pooled_labels)
        self.aligner_ = aligner
        self.primary_source_ = primary
        self.n_pooled_ = int(pooled.shape[0])
        self._fit_matrix(aligned.astype(np.float32))

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Fit, then encode ``X`` with the source labels given to the fit."""
        return self.fit(X, y, **fit_params).transform(X, sources=fit_params.get("sources"))

    def _prepare(self, X: Any, sources: Any = None) -> np.ndarray:
        X = self._validate(X, reset=False)
        labels = as_labels(sources, X.shape[0], self.primary_source_)
        return self.aligner_.transform(X.astype(np.float64), labels).astype(np.float32)

    def transform(self, X: Any, sources: Any = None) -> np.ndarray:  # type: ignore[override]
        """Align (default source: ``primary_source_``) and encode.

        Returns
        -------
        np.ndarray of float32, shape (n_samples, latent_dim)
        """
        return self._apply(self._prepare(X, sources), decode=False)

    def reconstruct(self, X: Any, sources: Any = None) -> np.ndarray:  # type: ignore[override]
        """Reconstruction of clean samples, in the aligned space."""
        return self._apply(self._prepare(X, sources), decode=True)

    def linear_map(self, source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Alignment of ``source`` (default ``primary_source_``) composed with the encoder.

        Returns
        -------
        W : np.ndarray of float64, shape (n_genes, latent_dim)
        b : np.ndarray of float64, shape (latent_dim,)
            ``transform(X, sources=[source] * n) == X @ W + b``.
        """
        W_enc, b_enc = super().linear_map()
        scale, shift = self.aligner_.affine(self.primary_source_ if source is None else source)
        return scale[:, None] * W_enc, shift @ W_enc + b_enc
