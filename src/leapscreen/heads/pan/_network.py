"""The network of the neural pan heads and its one training loop (torch imported on use only).

:func:`build_network` makes a two-tower network: a sample tower on ``z``, a perturbation tower on
the descriptor ``v`` (or a learned embedding in its place), their outputs joined by a dense layer
(``W_s s + W_p u``, the dense layer of the concatenation ``[s, u]`` written as two products, so that
each tower runs once per sample and once per perturbation, not once per pair) and further dense
layers to one output. Without towers it is a plain MLP on ``[z, v]``; with towers it is the tDNN
of the DeepDEP / ETL family. Dropout acts within the towers and on their outputs (per sample and
per perturbation, not per pair: per-pair random masks cost more than the layers themselves).

:func:`train_network` trains it on the labelled pairs in mini-batches of samples (all labelled pairs
of a batch of samples), with MSE or a per-perturbation correlation loss, and stops early on the
validation samples, restoring the weights of the best epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TrainResult", "build_network", "predict_network", "train_network"]


def build_network(
    n_features: int,
    width: int,
    n_embedded: int,
    sample_layers: tuple[int, ...],
    perturbation_layers: tuple[int, ...],
    joint_layers: tuple[int, ...],
    dropout: float,
) -> Any:
    """A fresh network (torch's global RNG draws the initial weights: seed it around the call)."""
    from leapscreen.heads.pan._modules import PanNetwork

    return PanNetwork(
        n_features, width, n_embedded, sample_layers, perturbation_layers, joint_layers, dropout
    )


def _correlation_loss(pred: Any, target: Any, cols: Any, p: int) -> Any:
    """1 - mean over perturbations (with >= 3 pairs and a spread) of the Pearson correlation."""
    import torch

    cnt = torch.bincount(cols, minlength=p).to(pred.dtype)
    zeros = torch.zeros(p, dtype=pred.dtype, device=pred.device)
    mp = zeros.index_add(0, cols, pred) / cnt.clamp(min=1)
    mt = zeros.index_add(0, cols, target) / cnt.clamp(min=1)
    pc, tc = pred - mp[cols], target - mt[cols]
    cov = zeros.index_add(0, cols, pc * tc)
    vp = zeros.index_add(0, cols, pc * pc)
    vt = zeros.index_add(0, cols, tc * tc)
    ok = (cnt >= 3) & (vt > 1e-8)
    if not bool(ok.any()):
        return ((pred - target) ** 2).mean()
    return 1.0 - (cov[ok] / torch.sqrt(vp[ok] * vt[ok] + 1e-8)).mean()


@dataclass
class TrainResult:
    """What training reports: the best epoch (1-based), epochs run, and the affine calibration."""

    best_epoch: int
    epochs: int
    calibration: tuple[float, float]


def train_network(
    net: Any,
    Zs: np.ndarray,
    T: np.ndarray,
    fit_samples: np.ndarray,
    val_samples: np.ndarray,
    desc: np.ndarray | None,
    emb_index: np.ndarray,
    *,
    loss: str,
    learning_rate: float,
    weight_decay: float,
    batch_samples: int,
    max_epochs: int,
    patience: int,
    seed: int,
    device: str,
) -> TrainResult:
    """Train ``net`` on the labelled pairs of ``fit_samples``; early stopping on ``val_samples``.

    Parameters
    ----------
    net : PanNetwork
    Zs : numpy.ndarray (n, d)
        Standardised features of all samples.
    T : numpy.ndarray (n, p)
        Standardised targets, NaN = not labelled (or left out).
    fit_samples, val_samples : numpy.ndarray of int
        Rows trained on and rows of the early-stopping split (may be empty: no early stopping).
    desc : numpy.ndarray (p, q) or None
        Standardised descriptors of the perturbations.
    emb_index : numpy.ndarray of int (p,)
        Embedding row of each perturbation (-1: use the descriptor).
    loss : {"mse", "correlation"}
    seed : int
        Seeds the batch order and dropout (torch's RNG is forked: the caller's is untouched).

    Returns
    -------
    TrainResult
        With the weights of the epoch of lowest validation loss restored in ``net``. With the
        correlation loss, ``calibration`` is the least-squares ``(a, b)`` of the target on
        ``a + b * output`` over the training pairs (identity for MSE).
    """
    import torch

    dev = torch.device(device)
    p = T.shape[1]
    Zt = torch.as_tensor(Zs, dtype=torch.float32, device=dev)
    Tt = torch.as_tensor(T, dtype=torch.float32, device=dev)
    Dt = None if desc is None else torch.as_tensor(desc, dtype=torch.float32, device=dev)
    Et = torch.as_tensor(emb_index, dtype=torch.long, device=dev)
    lossf = (
        (lambda pr, tg, c: _correlation_loss(pr, tg, c, p))
        if loss == "correlation"
        else (lambda pr, tg, c: ((pr - tg) ** 2).mean())
    )
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        net.to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=learning_rate, weight_decay=weight_decay)

        def batch_loss(idx: np.ndarray) -> Any:
            it = torch.as_tensor(idx, dtype=torch.long, device=dev)
            sub = Tt[it]
            mask = ~torch.isnan(sub)
            rows, cols = mask.nonzero(as_tuple=True)
            if rows.numel() == 0:
                return None
            pred = net(Zt[it], net.inputs(Dt, Et), rows, cols)
            return lossf(pred, sub[mask], cols)

        best, best_epoch, state, waited, epoch = np.inf, 0, None, 0, 0
        for epoch in range(1, max_epochs + 1):
            net.train()
            order = rng.permutation(fit_samples)
            for start in range(0, order.size, batch_samples):
                value = batch_loss(order[start : start + batch_samples])
                if value is None:
                    continue
                opt.zero_grad()
                value.backward()
                opt.step()
            if val_samples.size == 0:
                continue
            net.eval()
            with torch.no_grad():
                value = batch_loss(val_samples)
            score = float(value) if value is not None else np.inf
            if score < best - 1e-6 * max(1.0, abs(best)) or state is None:
                best, best_epoch, waited = score, epoch, 0
                state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                waited += 1
                if waited >= patience:
                    break
        if state is not None:
            net.load_state_dict(state)
        else:
            best_epoch = epoch
        net.eval()
        calibration = (0.0, 1.0)
        if loss == "correlation":
            out = predict_network(net, Zs[fit_samples], desc, emb_index, device)
            t = T[fit_samples]
            ok = ~np.isnan(t)
            x, y = out[ok], t[ok]
            var = float(x.var())
            b = float(((x - x.mean()) * (y - y.mean())).mean() / var) if var > 0 else 0.0
            calibration = (float(y.mean() - b * x.mean()), b)
    return TrainResult(best_epoch, epoch, calibration)


def predict_network(
    net: Any,
    Zs: np.ndarray,
    desc: np.ndarray | None,
    emb_index: np.ndarray,
    device: str,
    max_cells: int = 4_000_000,
) -> np.ndarray:
    """Network output for every (sample, perturbation): array (n, m), in chunks of samples."""
    import torch

    dev = torch.device(device)
    net.eval()
    with torch.no_grad():
        z = torch.as_tensor(Zs, dtype=torch.float32, device=dev)
        D = None if desc is None else torch.as_tensor(desc, dtype=torch.float32, device=dev)
        E = torch.as_tensor(emb_index, dtype=torch.long, device=dev)
        a, b = net.parts(z, net.inputs(D, E))
        m, h = b.shape
        step = max(1, max_cells // max(m * h, 1))
        out = []
        for start in range(0, a.shape[0], step):
            cell = a[start : start + step, None, :] + b[None, :, :]
            out.append(net.joint(cell).squeeze(-1).cpu().numpy())
    return np.concatenate(out, axis=0).astype(np.float64) if out else np.zeros((0, m))
