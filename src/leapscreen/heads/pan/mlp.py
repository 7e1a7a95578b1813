"""Neural pan-perturbation heads: the shared estimator and the pan-MLP.

:class:`PanMLPHead` is an MLP on the concatenation ``[z, v]`` of the sample representation and the
perturbation descriptor. Perturbations without a descriptor row (or all of them, with
``descriptors=None``) get a **learned embedding** of the descriptor's width (``embedding_dim``
without descriptors) in the descriptor's place; they can be predicted as training perturbations
but, having no descriptor, not through :meth:`predict_perturbations`. The tDNN head
(:mod:`.tdnn`) is the same estimator with a sample tower and a perturbation tower; both train with
:func:`leapscreen.heads.pan._network.train_network`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leapscreen.errors import InputError
from leapscreen.heads.pan._base import PanHead, _layers, _positive_int
from leapscreen.heads.pan._network import build_network, predict_network, train_network
from leapscreen.heads.pan._pairs import inner_split
from leapscreen.registry import register_head

__all__ = ["NeuralPanHead", "PanMLPHead"]


class NeuralPanHead(PanHead):
    """The estimator of the neural pan heads (architecture from :meth:`_architecture`)."""

    def _architecture(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(sample tower, perturbation tower, joint layers)."""
        raise NotImplementedError  # pragma: no cover

    def _check_params(self) -> None:
        owner = type(self).__name__
        self._architecture()
        if self.loss not in ("mse", "correlation"):
            raise InputError(
                f"{owner}: loss must be 'mse' or 'correlation', got {self.loss!r}",
                fix="use loss='mse'",
            )
        for name in ("learning_rate", "weight_decay", "dropout"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and np.isfinite(value) and value >= 0
            ok = ok and (value > 0 if name == "learning_rate" else True)
            ok = ok and (value < 1 if name == "dropout" else True)
            if not ok:
                raise InputError(
                    f"{owner}: {name} has the bad value {value!r}",
                    fix="learning_rate > 0, weight_decay >= 0, 0 <= dropout < 1",
                )
        for name in ("batch_samples", "max_epochs", "patience", "embedding_dim"):
            _positive_int(owner, name, getattr(self, name))
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - torch is a dependency
            raise InputError(
                f"{owner} needs torch, which is not installed", fix="pip install torch"
            ) from exc
        try:
            torch.empty(1, device=torch.device(self.device))
        except (RuntimeError, AssertionError, TypeError) as exc:
            raise InputError(
                f"{owner}: device {self.device!r} is not available ({exc})",
                fix="use device='cpu' (or 'cuda' on a machine with a GPU)",
            ) from exc

    def _start_folds(self, k, n, d, p, Ps, has_desc) -> None:
        self._nets = []
        self.input_width_ = int(Ps.shape[1]) if Ps is not None else int(self.embedding_dim)
        self.n_embedded_ = 0 if bool(has_desc.all()) else int(p)
        self.best_epochs_ = np.zeros(k, dtype=np.int64)
        self.epochs_run_ = np.zeros(k, dtype=np.int64)
        self.calibration_ = np.tile([0.0, 1.0], (k, 1))

    def _new_network(self) -> Any:
        s, q, j = self._architecture()
        return build_network(
            self.n_features_in_, self.input_width_, self.n_embedded_, s, q, j, float(self.dropout)
        )

    def _fit_fold(self, fold, Zs, T, train, P, has_desc, seed) -> None:
        import torch

        fit_s, val_s = inner_split(train, float(self.val_fraction), seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self._new_network()
        emb_index = np.where(has_desc, -1, np.arange(has_desc.size))
        result = train_network(
            net,
            Zs,
            T,
            fit_s,
            val_s,
            P,
            emb_index,
            loss=self.loss,
            learning_rate=float(self.learning_rate),
            weight_decay=float(self.weight_decay),
            batch_samples=int(self.batch_samples),
            max_epochs=int(self.max_epochs),
            patience=int(self.patience),
            seed=seed,
            device=self.device,
        )
        self._nets.append(net)
        self.best_epochs_[fold] = result.best_epoch
        self.epochs_run_[fold] = result.epochs
        self.calibration_[fold] = result.calibration

    def _predict_fold(self, fold, Zs, desc, emb_index) -> np.ndarray:
        out = predict_network(self._nets[fold], Zs, desc, emb_index, self.device)
        a, b = self.calibration_[fold]
        return a + b * out

    # -------------------------------------------------------------- saved state (no pickle)

    def _extra_state(self) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        arrays = {}
        for f, net in enumerate(getattr(self, "_nets", [])):
            for name, tensor in net.state_dict().items():
                arrays[f"fold{f}.{name}"] = tensor.detach().cpu().numpy()
        return arrays, {}

    def _load_extra_state(self, arrays: dict[str, np.ndarray], texts: dict[str, str]) -> None:
        if not hasattr(self, "n_folds_"):
            return
        import torch

        self._nets = []
        for f in range(self.n_folds_):
            net = self._new_network()
            prefix = f"fold{f}."
            state = {
                k[len(prefix) :]: torch.as_tensor(np.asarray(v))
                for k, v in arrays.items()
                if k.startswith(prefix)
            }
            net.load_state_dict(state)
            net.to(torch.device(self.device))
            net.eval()
            self._nets.append(net)


@register_head("pan-mlp")
class PanMLPHead(NeuralPanHead):
    """Pan-perturbation MLP on ``[z, descriptor]``: one network for all perturbations.

    Trained on the labelled (sample, perturbation) pairs (mini-batches of ``batch_samples``
    samples with all their labelled pairs), per-perturbation standardised targets, Adam, early
    stopping on a sample-grouped inner split that restores the best epoch's weights; ``n_folds``
    sample-grouped fold models averaged (see :mod:`leapscreen.heads.pan._base`).

    Parameters
    ----------
    descriptors : pandas.DataFrame or None, default None
        Perturbation ID x numeric columns (e.g. :func:`~leapscreen.heads.pan.gene_set_descriptors`
        or :func:`leapscreen.data.genesets.read_descriptor_table`), looked up by the
        ``perturbations`` names given to ``fit`` (ID, else symbol). Perturbations without a row,
        or all with None, get a learned embedding. Wrap it in
        :class:`~leapscreen.heads.pan.DescriptorTable` to save the head with a model.
    hidden_layers : tuple of int, default (128, 64)
        Widths of the dense layers after the concatenation.
    dropout : float, default 0.1
    loss : {"mse", "correlation"}, default "mse"
        MSE on the standardised targets, or 1 - the mean per-perturbation Pearson correlation
        within each batch (outputs then calibrated by one affine map on the training pairs).
    learning_rate : float, default 1e-3
    weight_decay : float, default 1e-5
        Adam's L2 penalty.
    batch_samples : int, default 64
        Samples per mini-batch.
    max_epochs : int, default 40
    patience : int, default 5
        Epochs without a better validation loss before stopping.
    val_fraction : float, default 0.15
        Share of each fold's training samples held out for early stopping.
    embedding_dim : int, default 32
        Width of the learned embeddings when there are no descriptors at all.
    n_folds : int, default 5
        Sample-grouped folds (fold models averaged; out-of-fold predictions). 1: a single model.
    random_state : int or None, default 0
    device : str, default "cpu"
        Torch device ("cuda" for a GPU).

    Attributes
    ----------
    y_mean_, y_scale_ : ndarray (p,)
        Training mean and sd of every perturbation.
    has_descriptor_ : ndarray of bool (p,)
    train_descriptors_ : ndarray (p, q) or None
        Standardised descriptors of the training perturbations (zeros where none).
    descriptor_columns_ : list of str; descriptor_mean_, descriptor_scale_ : ndarray (q,)
    scale_coef_ : ndarray (q, 2); scale_intercept_ : ndarray (2,)
        Ridge of [mean, log sd] on the descriptors, for perturbations never screened.
    z_mean_, z_scale_ : ndarray (n_folds, d)
    best_epochs_, epochs_run_ : ndarray of int (n_folds,)
    calibration_ : ndarray (n_folds, 2)
    fallback_ : ndarray of bool (p,); n_train_ : ndarray of int (p,)
    """

    def __init__(
        self,
        descriptors: Any = None,
        hidden_layers: tuple[int, ...] = (128, 64),
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
        return (), (), _layers(owner, "hidden_layers", self.hidden_layers, allow_empty=False)
