"""PS-MLP's training engine: counter-based randomness, batched networks, Adam, the fold plan.

The estimator is :class:`leapscreen.heads.mlp.PSMLPHead`; its module docstring describes the
procedure. This module holds what trains the batched networks (torch is imported by the caller and
passed in only where a tensor is needed) and the numpy forward pass used for prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

# ---------------------------------------------------------------------------------- hashing
#
# murmur3's 32-bit finaliser: a bijection of uint32 with full avalanche. numpy (uint32, wraps) for
# keys, initial weights and row orders; torch (int32, the same bits) for the dropout masks.

_M1, _M2 = 0x85EBCA6B, 0xC2B2AE35
_GOLDEN = 0x9E3779B9  # element / row stride
_UNIT = 0x165667B1  # hidden-unit stride of the dropout keys
_EPOCH = 0x27D4EB2F  # epoch stride
_U32 = np.uint32


def _fmix(x: Any) -> np.ndarray:
    """murmur3 ``fmix32`` of uint32 values (a new array)."""
    x = np.array(x, dtype=_U32)
    x ^= x >> _U32(16)
    x *= _U32(_M1)
    x ^= x >> _U32(13)
    x *= _U32(_M2)
    x ^= x >> _U32(16)
    return x


def _fmix_torch(x: torch.Tensor) -> torch.Tensor:
    """:func:`_fmix` in place on an int32 tensor (logical shifts emulated with masks)."""
    x.bitwise_xor_((x >> 16) & 0xFFFF)
    x.mul_(_M1 - (1 << 32))  # the int32 with the same bits
    x.bitwise_xor_((x >> 13) & 0x7FFFF)
    x.mul_(_M2 - (1 << 32))
    x.bitwise_xor_((x >> 16) & 0xFFFF)
    return x


def _as_int32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=_U32).view(np.int32)


def _seed_key(random_state: int | None) -> int:
    if random_state is None:
        random_state = int(np.random.default_rng().integers(1 << 62))
    rs = int(random_state)
    return int(_fmix((int(_fmix(rs & 0xFFFFFFFF)) + (rs >> 32)) & 0xFFFFFFFF))


def _model_keys(seed: int, setting: int, columns: np.ndarray, n_folds: int) -> np.ndarray:
    """Key of every model (column-major over folds: model ``i * n_folds + f``), uint32."""
    base = _fmix((seed + setting) & 0xFFFFFFFF)
    per_col = _fmix(base + np.asarray(columns, dtype=_U32))
    return _fmix(per_col[:, None] + np.arange(n_folds, dtype=_U32)[None, :]).ravel()


def _uniform(keys: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) float64 from uint32 keys (24 bits)."""
    return (_fmix(keys) >> _U32(8)).astype(np.float64) * 2.0**-24


# ---------------------------------------------------------------------------------- networks
#
# The weights of M networks with hidden widths (h0, ..., hL): W0 (d, M, h0), b0 (M, h0), then
# W_l (M, h_{l-1}, h_l), b_l (M, h_l), and the output layer w (M, hL), b (M,). The model axis is 1
# for W0 and 0 for every other array.


def _shapes(d: int, m: int, hidden: tuple[int, ...]) -> list[tuple[tuple[int, ...], int]]:
    """(shape, fan_in) of every weight array of ``m`` networks."""
    out = [((d, m, hidden[0]), d), ((m, hidden[0]), d)]
    for a, b in zip(hidden[:-1], hidden[1:], strict=True):
        out += [((m, a, b), a), ((m, b), a)]
    out += [((m, hidden[-1]), hidden[-1]), ((m,), hidden[-1])]
    return out


def _model_axis(i: int) -> int:
    return 1 if i == 0 else 0


def _init_weights(keys: np.ndarray, d: int, hidden: tuple[int, ...]) -> list[np.ndarray]:
    """PyTorch's default Linear initialisation, U(+-1/sqrt(fan_in)), from the models' keys."""
    m = keys.size
    out = []
    for t, (shape, fan_in) in enumerate(_shapes(d, m, hidden)):
        ax = _model_axis(t)
        per = [s for i, s in enumerate(shape) if i != ax]
        elem = np.arange(int(np.prod(per)), dtype=_U32).reshape(per) * _U32(_GOLDEN)
        tkeys = _fmix(keys ^ _U32((0xA5A5A5A5 + 7919 * t) & 0xFFFFFFFF))
        full = np.expand_dims(elem, ax) + np.expand_dims(
            tkeys, [i for i in range(len(shape)) if i != ax]
        )
        bound = 1.0 / math.sqrt(fan_in)
        out.append(((2.0 * _uniform(full) - 1.0) * bound).astype(np.float32))
    return out


def _forward_numpy(layers: list[np.ndarray], Z: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
    """Outputs (n, M) of M networks (folded weights, no dropout) on the rows of ``Z``."""
    W0 = layers[0]
    d, m, h0 = W0.shape
    n = Z.shape[0]
    out = np.empty((n, m), dtype=np.float64)
    widest = max(a.shape[-1] for a in layers[1::2] if a.ndim == 2)
    chunk = max(1, (1 << 22) // max(1, m * widest))
    W0f = W0.reshape(d, m * h0).astype(dtype, copy=False)
    rest = [a.astype(dtype, copy=False) for a in layers[1:]]
    for start in range(0, n, chunk):
        z = np.asarray(Z[start : start + chunk], dtype=dtype)
        h = (z @ W0f).reshape(z.shape[0], m, h0) + rest[0]
        np.maximum(h, 0.0, out=h)
        h = np.ascontiguousarray(h.transpose(1, 0, 2))  # (M, rows, h0)
        for W, b in zip(rest[1:-2:2], rest[2:-2:2], strict=True):
            h = np.matmul(h, W) + b[:, None, :]
            np.maximum(h, 0.0, out=h)
        o = np.einsum("mrh,mh->mr", h, rest[-2]) + rest[-1][:, None]
        out[start : start + chunk] = o.T
    return out


def _fold_scaling(
    raw: list[np.ndarray], mu: np.ndarray, sd: np.ndarray, y_mean: np.ndarray, y_sd: np.ndarray
) -> list[np.ndarray]:
    """Weights on raw inputs and raw targets from weights on z-scored ones (exact algebra)."""
    W0 = raw[0].astype(np.float64) / sd.T[:, :, None]
    b0 = raw[1].astype(np.float64) - np.einsum("dmh,md->mh", W0, mu)
    mid = [a.astype(np.float32) for a in raw[2:-2]]
    w_out = (raw[-2].astype(np.float64) * y_sd[:, None]).astype(np.float32)
    b_out = raw[-1].astype(np.float64) * y_sd + y_mean
    return [W0.astype(np.float32), b0, *mid, w_out, b_out]


def _take_models(layers: list[np.ndarray], idx: np.ndarray) -> list[np.ndarray]:
    return [np.take(a, idx, axis=_model_axis(i)) for i, a in enumerate(layers)]


# ---------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class _Config:
    hidden: tuple[int, ...]
    lr: float
    dropout: float
    max_epochs: int
    patience: int
    batch_size: int
    weight_decay: float
    device: str


@dataclass
class _Trained:
    """The networks of one setting after early stopping."""

    weights: list[np.ndarray]  # best-epoch weights on z-scored inputs / targets (float32)
    best_loss: np.ndarray  # (M,) inner-validation MSE (z-scored target) of the kept weights
    best_epoch: np.ndarray  # (M,) epoch (1-based) of the kept weights
    history: np.ndarray  # (epochs run, M) inner-validation MSE, NaN once a model has stopped


#: relative decrease of the inner-validation loss that resets the patience counter (any decrease
#: still replaces the kept weights: they are those of the best epoch seen)
_MIN_DELTA = 1e-4
#: compact the batch when this share of its models has stopped
_COMPACT_AT = 0.1


class _Adam:
    """Adam (torch's defaults and update, L2 ``weight_decay`` added to the gradient), in place.

    Written out rather than ``torch.optim.Adam`` so that models can be dropped from the batch
    (:meth:`select`) with their moments, and because building a torch optimiser imports
    ``torch._dynamo`` (seconds on a busy machine).
    """

    def __init__(
        self, params: list[torch.Tensor], lr: float, weight_decay: float, fused: bool = True
    ) -> None:
        import torch

        self.params = params
        self.lr, self.weight_decay = lr, weight_decay
        self.beta1, self.beta2, self.eps = 0.9, 0.999, 1e-8
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = 0
        self.fused = fused and params[0].device.type in ("cpu", "cuda")

    def step(self) -> None:
        """One Adam update of every parameter from its ``.grad`` (cleared afterwards)."""
        import torch

        self.steps += 1
        with torch.no_grad():
            grads = [p.grad for p in self.params]
            if self.fused:
                try:  # torch's fused kernel (one pass over the weights; cpu and cuda)
                    steps = [torch.tensor(float(self.steps), device=p.device) for p in self.params]
                    torch._fused_adam_(
                        self.params,
                        grads,
                        self.exp_avg,
                        self.exp_avg_sq,
                        [],
                        steps,
                        lr=self.lr,
                        beta1=self.beta1,
                        beta2=self.beta2,
                        weight_decay=self.weight_decay,
                        eps=self.eps,
                        amsgrad=False,
                        maximize=False,
                    )
                except (AttributeError, RuntimeError, TypeError, NotImplementedError):
                    self.fused = False  # pragma: no cover - device or torch without the kernel
                    self.steps -= 1
                    return self.step()
            else:
                bias1 = 1.0 - self.beta1**self.steps
                bias2 = 1.0 - self.beta2**self.steps
                for p, g, m, v in zip(
                    self.params, grads, self.exp_avg, self.exp_avg_sq, strict=True
                ):
                    if self.weight_decay:
                        g = g.add(p, alpha=self.weight_decay)
                    m.mul_(self.beta1).add_(g, alpha=1.0 - self.beta1)
                    v.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
                    denom = v.sqrt().div_(math.sqrt(bias2)).add_(self.eps)
                    p.addcdiv_(m, denom, value=-self.lr / bias1)
            for p in self.params:
                p.grad = None
        return None

    def select(self, keep: torch.Tensor) -> list[torch.Tensor]:
        """Keep the models ``keep`` (indices into the batch); returns the new parameters."""
        new = []
        for i, p in enumerate(self.params):
            ax = _model_axis(i)
            new.append(p.detach().index_select(ax, keep).requires_grad_(True))
            self.exp_avg[i] = self.exp_avg[i].index_select(ax, keep)
            self.exp_avg_sq[i] = self.exp_avg_sq[i].index_select(ax, keep)
        self.params = new
        return new


#: below this many hidden activations per mini-batch (rows x models x units) CPU training runs
#: on one torch thread: small kernels gain nothing from threads and stall on a busy machine
_SMALL_STEP = 1 << 20


def _train(
    Z: np.ndarray,
    target: np.ndarray,
    train_mask: np.ndarray,
    val_mask: np.ndarray,
    mu: np.ndarray,
    sd: np.ndarray,
    keys: np.ndarray,
    folds: np.ndarray,
    order_key: int,
    mask_key: int,
    cfg: _Config,
) -> _Trained:
    """:func:`_train_batched`, on one CPU thread when its steps are small (restored after)."""
    import torch

    args = (Z, target, train_mask, val_mask, mu, sd, keys, folds, order_key, mask_key, cfg)
    small = cfg.batch_size * keys.size * max(cfg.hidden) < _SMALL_STEP
    threads = torch.get_num_threads()
    if torch.device(cfg.device).type != "cpu" or not small or threads == 1:
        return _train_batched(*args)
    torch.set_num_threads(1)
    try:
        return _train_batched(*args)
    finally:
        torch.set_num_threads(threads)


def _train_batched(
    Z: np.ndarray,
    target: np.ndarray,
    train_mask: np.ndarray,
    val_mask: np.ndarray,
    mu: np.ndarray,
    sd: np.ndarray,
    keys: np.ndarray,
    folds: np.ndarray,
    order_key: int,
    mask_key: int,
    cfg: _Config,
) -> _Trained:
    """Train M networks at once with per-model early stopping (see the module docstring).

    Parameters
    ----------
    Z : (n, d) raw inputs; target : (n, M) z-scored targets (any value where not used)
    train_mask, val_mask : (n, M) bool, each model's inner-training and inner-validation rows
    mu, sd : (M, d) each model's input statistics (its CV training fold)
    keys : (M,) uint32 model keys (initial weights); folds : (M,) fold of every model
    order_key, mask_key : keys of the epochs' row orders and of the dropout masks (the masks of a
    row depend on the fold, the epoch and the unit: models of different columns share them)
    """
    import torch

    dev = torch.device(cfg.device)
    n, d = Z.shape
    m_total = keys.size
    hidden = cfg.hidden
    params = [
        torch.from_numpy(a).to(dev).requires_grad_(True) for a in _init_weights(keys, d, hidden)
    ]
    best = [p.detach().clone() for p in params]
    opt = _Adam(params, cfg.lr, cfg.weight_decay)

    Zt = torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float32)).to(dev)
    T_all = torch.from_numpy(np.ascontiguousarray(np.nan_to_num(target), dtype=np.float32)).to(dev)
    TM_all = torch.from_numpy(train_mask.astype(np.float32)).to(dev)
    VM_all = torch.from_numpy(val_mask.astype(np.float32)).to(dev)
    inv_sd_all = torch.from_numpy((1.0 / sd).T[:, :, None].astype(np.float32)).to(dev)
    mu_all = torch.from_numpy(mu.T[:, :, None].astype(np.float32)).to(dev)

    train_rows = np.flatnonzero(train_mask.any(axis=1))
    row_u32 = train_rows.astype(_U32) * _U32(_GOLDEN)
    eval_rows = torch.from_numpy(np.flatnonzero(val_mask.any(axis=1))).to(dev)
    row_keys = torch.from_numpy(_as_int32(np.arange(n, dtype=_U32) * _U32(_GOLDEN))).to(dev)
    unit_keys = []
    offset = 0
    for width in hidden:
        units = (np.arange(width, dtype=_U32) + _U32(offset)) * _U32(_UNIT)
        unit_keys.append(torch.from_numpy(_as_int32(units)).to(dev).view(1, 1, width))
        offset += width
    keep_threshold = int(round(cfg.dropout * 65536))
    drop = keep_threshold > 0
    scale = 1.0 / (1.0 - cfg.dropout)
    folds_all = torch.from_numpy(np.asarray(folds, dtype=np.int64)).to(dev)
    n_folds = int(folds.max()) + 1 if folds.size else 1

    present = torch.arange(m_total, device=dev)  # global ids of the models in the batch
    alive = torch.ones(m_total, dtype=torch.bool, device=dev)  # of those, not stopped
    best_loss = torch.full((m_total,), math.inf, device=dev)
    ref_loss = torch.full((m_total,), math.inf, device=dev)  # for the patience counter
    best_epoch = torch.zeros(m_total, dtype=torch.int64, device=dev)
    waited = torch.zeros(m_total, dtype=torch.int64, device=dev)
    history = np.full((cfg.max_epochs, m_total), np.nan, dtype=np.float32)

    def select(ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cols = (T_all, TM_all, VM_all, inv_sd_all, mu_all)
        return (*(a[:, ids] for a in cols), folds_all[ids])

    T, TM, VM, inv_sd, mu, fold_ids = select(present)

    def keep_mask(rows: torch.Tensor, layer: int, fold_keys: torch.Tensor) -> torch.Tensor:
        """Dropout keep mask (rows, models, units): a hash of (fold key, row, unit)."""
        x = fold_keys.view(1, -1, 1) + row_keys[rows].view(-1, 1, 1) + unit_keys[layer]
        return ((_fmix_torch(x) & 0xFFFF) >= keep_threshold)[:, fold_ids]

    def forward(zb: torch.Tensor, rows: torch.Tensor | None, fold_keys: torch.Tensor | None):
        """Outputs (rows, models); dropout when ``fold_keys`` (training) is given."""
        train = fold_keys is not None and drop
        W0e = params[0] * inv_sd  # the first layer on raw inputs: W / sd, b - (mu / sd) W
        b0e = params[1] - (W0e * mu).sum(0)
        a = W0e.shape[1]
        h = torch.relu(
            torch.addmm(b0e.reshape(1, -1), zb, W0e.reshape(d, -1)).view(-1, a, hidden[0])
        )
        if train:
            h = h * keep_mask(rows, 0, fold_keys)
        for layer in range(1, len(hidden)):
            W = params[2 * layer] * scale if train else params[2 * layer]
            h = torch.relu(torch.einsum("bah,ahk->bak", h, W) + params[2 * layer + 1])
            if train:
                h = h * keep_mask(rows, layer, fold_keys)
        w_out = params[-2] * scale if train else params[-2]  # inverted dropout, scaled after
        return (h * w_out).sum(-1) + params[-1]

    n_batches = max(1, math.ceil(train_rows.size / cfg.batch_size))
    epochs_run = 0
    for epoch in range(cfg.max_epochs):
        epochs_run = epoch + 1
        epoch_key = _fmix((order_key + (epoch + 1) * _EPOCH) & 0xFFFFFFFF)
        order = train_rows[np.argsort(_fmix(epoch_key + row_u32), kind="stable")]
        fold_keys = _fmix(
            _U32((mask_key + (epoch + 1) * _EPOCH) & 0xFFFFFFFF)
            + np.arange(n_folds, dtype=_U32) * _U32(_GOLDEN)
        )
        ekeys = torch.from_numpy(_as_int32(fold_keys)).to(dev)
        for batch in np.array_split(order, n_batches):
            rows = torch.from_numpy(batch).to(dev)
            out = forward(Zt[rows], rows, ekeys)
            mb = TM[rows]
            loss = ((((out - T[rows]) ** 2) * mb).sum(0) / mb.sum(0).clamp_min(1.0)).sum()
            loss.backward()
            opt.step()
        # inner validation of every model present (eval mode: no dropout)
        with torch.no_grad():
            sq = torch.zeros(present.numel(), device=dev)
            for chunk in torch.split(eval_rows, 512):
                out = forward(Zt[chunk], None, None)
                sq += (((out - T[chunk]) ** 2) * VM[chunk]).sum(0)
            val = sq / VM[eval_rows].sum(0).clamp_min(1.0)
            live = alive[present]
            improved = live & (val < best_loss[present])
            if improved.any():
                ids = present[improved]
                for i, (p, store) in enumerate(zip(params, best, strict=True)):
                    ax = _model_axis(i)
                    store.index_copy_(
                        ax, ids, p.detach().index_select(ax, improved.nonzero()[:, 0])
                    )
                best_loss[ids] = val[improved]
                best_epoch[ids] = epoch + 1
            significant = live & (val < ref_loss[present] * (1.0 - _MIN_DELTA))
            ref_loss[present[significant]] = val[significant]
            waited[present[live & ~significant]] += 1
            waited[present[significant]] = 0
            history[epoch, present[live].cpu().numpy()] = val[live].cpu().numpy()
            alive[present[live & (waited[present] >= cfg.patience)]] = False
            live = alive[present]
            n_live = int(live.sum())
            if n_live == 0:
                break
            if present.numel() - n_live >= _COMPACT_AT * present.numel():
                keep_idx = live.nonzero()[:, 0]
                params = opt.select(keep_idx)
                present = present[keep_idx]
                T, TM, VM, inv_sd, mu, fold_ids = select(present)
    return _Trained(
        weights=[b.cpu().numpy() for b in best],
        best_loss=best_loss.cpu().numpy().astype(np.float64),
        best_epoch=best_epoch.cpu().numpy(),
        history=history[:epochs_run],
    )


# ---------------------------------------------------------------------------------- the plan


@dataclass
class _Plan:
    """Per-model rows and statistics (model ``i * n_folds + f``: column ``i``, fold ``f``)."""

    target: np.ndarray  # (n, M) z-scored targets, 0 where not labelled
    train: np.ndarray  # (n, M) bool, inner-training rows
    val: np.ndarray  # (n, M) bool, inner-validation rows
    mu: np.ndarray  # (M, d) input mean of the CV training fold
    sd: np.ndarray  # (M, d) input standard deviation (1 where constant)
    y_mean: np.ndarray  # (M,)
    y_sd: np.ndarray  # (M,)


def _plan(
    Z: np.ndarray,
    Y: np.ndarray,
    fold: np.ndarray,
    n_folds: int,
    split_keys: np.ndarray,
    subset_key: int,
    fraction: float,
) -> _Plan:
    """Inner splits and scaling statistics of every (column, fold) model.

    ``fold`` (n, q): fold of every labelled row of each column (-1 unlabelled). A model's CV
    training fold is split into inner-validation rows (those in one seeded subset of all rows,
    ``fraction`` of them) and inner-training rows (the others). A model left without an
    inner-validation row or with fewer than two inner-training rows draws its own split of its
    training fold instead (keyed by ``split_keys``).
    """
    n, q = Y.shape
    tr = ((fold[:, :, None] >= 0) & (fold[:, :, None] != np.arange(n_folds))).reshape(n, -1)
    n_sub = min(n, max(1, int(round(fraction * n))))
    subset = np.zeros(n, dtype=bool)
    row_keys = np.arange(n, dtype=_U32) * _U32(_GOLDEN)
    subset[np.argsort(_fmix(_U32(subset_key) + row_keys), kind="stable")[:n_sub]] = True
    val = tr & subset[:, None]
    train = tr & ~subset[:, None]
    for m in np.flatnonzero((val.sum(axis=0) == 0) | (train.sum(axis=0) < 2)):
        rows = np.flatnonzero(tr[:, m])
        order = rows[np.argsort(_fmix(split_keys[m] + row_keys[rows]), kind="stable")]
        n_val = min(max(1, int(round(fraction * rows.size))), max(rows.size - 1, 0))
        val[:, m] = False
        train[:, m] = False
        val[order[:n_val], m] = True
        train[order[n_val:], m] = True
    # statistics of the CV training fold (inner training and validation rows); each model's own
    # rows only, so that a column's networks do not depend on the other columns' rows
    weight = tr.astype(np.float64)
    count = np.maximum(weight.sum(axis=0), 1.0)
    mu = (weight.T @ Z) / count[:, None]
    var = np.maximum((weight.T @ (Z * Z)) / count[:, None] - mu**2, 0.0)
    sd = np.sqrt(var)
    sd = np.where(sd > 1e-6 * np.maximum(1.0, np.abs(mu)), sd, 1.0)
    Ym = np.repeat(Y, n_folds, axis=1)
    Yz = np.where(tr, Ym, 0.0)
    y_mean = Yz.sum(axis=0) / count
    y_var = np.maximum((np.where(tr, (Ym - y_mean) ** 2, 0.0)).sum(axis=0) / count, 0.0)
    y_sd = np.sqrt(y_var)
    y_sd = np.where(y_sd > 1e-12 * np.maximum(1.0, np.abs(y_mean)), y_sd, 1.0)
    target = np.where(tr, (Ym - y_mean) / y_sd, 0.0).astype(np.float32)
    return _Plan(target, train, val, mu, sd, y_mean, y_sd)


# ---------------------------------------------------------------------------------- the head
