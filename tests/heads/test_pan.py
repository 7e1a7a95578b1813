"""Pan-perturbation heads: one model for all perturbations on [z, descriptor] pairs.

The planted problem comes from the simulator: every perturbation is driven by the latent
programmes (``frac_programme_driven=1``), and its descriptor is the direction of its programme
coefficients (the truth's ``programme_coef``), so a perturbation's response is a function of its
descriptor and of the sample's programmes, which the PCA of the expression recovers. Eight
perturbations are held out of training entirely and predicted from their descriptors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from leapscreen.base import get_state, set_state
from leapscreen.data.genesets import read_gmt
from leapscreen.data.simulate import simulate_screen
from leapscreen.errors import InputError
from leapscreen.heads import MeanHead
from leapscreen.heads._cv import spearman_columns
from leapscreen.heads.pan import (
    DescriptorTable,
    PanLightGBMHead,
    PanMLPHead,
    PanTDNNHead,
    gene_set_descriptors,
    membership_pca,
    perturbation_symbol,
)
from leapscreen.heads.pan._pairs import inner_split, pairs_of, sample_folds
from leapscreen.heads.pan.descriptors import match_descriptors
from leapscreen.registry import head_names

torch = pytest.importorskip("torch")

N_SEEN = 32


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the tiny networks here run faster, and the 2-core machine is shared."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def nan_spearman(pred: np.ndarray, Y: np.ndarray) -> float:
    """Mean over columns of the Spearman correlation on each column's labelled rows."""
    scores = []
    for j in range(Y.shape[1]):
        ok = ~np.isnan(Y[:, j])
        scores.append(spearman_columns(pred[ok, j : j + 1], Y[ok, j : j + 1])[0])
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def screen():
    data, truth = simulate_screen(
        n_samples=160,
        n_genes=150,
        n_perturbations=40,
        n_programmes=4,
        frac_programme_driven=1.0,
        frac_null=0.0,
        frac_lineage_specific=0.0,
        mean_driver_genes=1.0,
        max_driver_genes=1,
        noise=0.3,
        frac_missing=0.15,
        random_state=3,
    )
    X = data.expression.to_numpy(np.float64)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)
    Z = PCA(8, random_state=0).fit_transform(X)
    G = truth.programme_coef.T  # perturbations x programmes
    G = G.div(np.sqrt((G**2).sum(axis=1)), axis=0)
    cols = [str(c) for c in data.responses.columns]
    return {
        "Z": Z,
        "Y": data.responses.to_numpy(np.float64),
        "cols": cols,
        "desc": DescriptorTable(G.loc[cols]),
        "tr": np.arange(120),
        "te": np.arange(120, 160),
    }


def fast(name: str, **params):
    """Small, fast instances of each pan head."""
    if name == "pan-mlp":
        base = {"hidden_layers": (64, 32), "max_epochs": 30, "patience": 6, "batch_samples": 16}
        return PanMLPHead(**{**base, "n_folds": 3, **params})
    if name == "pan-tdnn":
        base = {
            "sample_layers": (32,),
            "perturbation_layers": (32,),
            "hidden_layers": (32,),
            "max_epochs": 40,
            "patience": 6,
            "batch_samples": 16,
        }
        return PanTDNNHead(**{**base, "n_folds": 3, **params})
    # small data: more features per tree and more rows per round than the GDSC-sized defaults
    base = {"n_estimators": 150, "min_child_samples": 10, "n_jobs": 1, "learning_rate": 0.05}
    base |= {"colsample_bytree": 0.8, "subsample": 0.8}
    return PanLightGBMHead(**{**base, "n_folds": 3, **params})


NAMES = ["pan-mlp", "pan-tdnn", "pan-lightgbm"]


@pytest.fixture(scope="module")
def fitted(screen):
    s = screen
    Ytr = s["Y"][s["tr"]][:, :N_SEEN]
    return {
        name: fast(name, descriptors=s["desc"]).fit(
            s["Z"][s["tr"]], Ytr, perturbations=s["cols"][:N_SEEN]
        )
        for name in NAMES
    }


def test_registered():
    assert {"pan-mlp", "pan-tdnn", "pan-lightgbm"} <= set(head_names())


@pytest.mark.parametrize("name", NAMES)
def test_recovers_planted_signal_better_than_the_mean(fitted, screen, name):
    s = screen
    head = fitted[name]
    Yte = s["Y"][s["te"]][:, :N_SEEN]
    pred = head.predict(s["Z"][s["te"]])
    assert pred.shape == Yte.shape and np.isfinite(pred).all()
    assert nan_spearman(pred, Yte) > 0.35  # the mean predictor scores 0
    mean = MeanHead().fit(s["Z"][s["tr"]], s["Y"][s["tr"]][:, :N_SEEN]).predict(s["Z"][s["te"]])
    ok = ~np.isnan(Yte)
    assert ((pred - Yte)[ok] ** 2).mean() < 0.9 * ((mean - Yte)[ok] ** 2).mean()


@pytest.mark.parametrize("name", NAMES)
def test_unscreened_perturbations_predicted_from_their_descriptor(fitted, screen, name):
    s = screen
    head = fitted[name]
    held = s["desc"].iloc[N_SEEN:]
    truth = s["Y"][s["te"]][:, N_SEEN:]
    pred = head.predict_perturbations(s["Z"][s["te"]], held)
    assert pred.shape == truth.shape and np.isfinite(pred).all()
    score = nan_spearman(pred, truth)
    # control: each held-out perturbation given another one's descriptor
    shuffled = held.copy()
    shuffled[:] = held.to_numpy()[np.roll(np.arange(len(held)), 1)]
    control = nan_spearman(head.predict_perturbations(s["Z"][s["te"]], shuffled), truth)
    assert score > 0.25 and score > control + 0.15, (score, control)
    # a training perturbation given through its descriptor: its own scale, same ranking
    again = head.predict_perturbations(s["Z"][s["te"]], s["desc"].iloc[:3])
    np.testing.assert_allclose(again, head.predict(s["Z"][s["te"]])[:, :3], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_out_of_fold_predictions(fitted, screen, name):
    s = screen
    head = fitted[name]
    Ytr = s["Y"][s["tr"]][:, :N_SEEN]
    oof = head.out_of_fold_predictions()
    assert oof.shape == Ytr.shape and oof.dtype == np.float64
    lab = ~np.isnan(Ytr)
    full = head.predict(s["Z"][s["tr"]])
    np.testing.assert_allclose(oof[~lab], full[~lab], rtol=1e-6, atol=1e-8)
    assert not np.allclose(oof[lab], full[lab])  # held-out fold models, not the full mean
    assert nan_spearman(oof, Ytr) > 0.3
    # out-of-fold scores are honest: below the in-sample ones
    assert nan_spearman(oof, Ytr) < nan_spearman(full, Ytr)


def test_sample_grouped_splits():
    folds = sample_folds(50, 5, 0)
    assert np.bincount(folds).tolist() == [10] * 5
    fit, val = inner_split(np.arange(40), 0.2, 1)
    assert val.size == 8 and not set(fit) & set(val) and set(fit) | set(val) == set(range(40))
    T = np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, 4.0]])
    rows, cols, y = pairs_of(T, np.array([0, 2]))
    assert rows.tolist() == [0, 2, 2] and cols.tolist() == [0, 0, 1] and y.tolist() == [1, 3, 4]


def test_nan_aware_and_fallback(screen):
    s = screen
    Y = s["Y"][s["tr"]][:, :10].copy()
    Y[3:, 0] = np.nan  # three labels: below the floor, predicted by its mean
    Y[::2, 1] = np.nan
    head = fast("pan-lightgbm", descriptors=s["desc"].iloc[:10], n_folds=2, n_estimators=30)
    head.fit(s["Z"][s["tr"]], Y)  # no names: one descriptor row per column, in order
    pred = head.predict(s["Z"][s["te"]])
    assert head.fallback_.tolist() == [True] + [False] * 9
    np.testing.assert_allclose(pred[:, 0], np.nanmean(Y[:, 0]))
    assert head.n_train_[1] == np.sum(~np.isnan(Y[:, 1]))
    np.testing.assert_allclose(head.out_of_fold_predictions()[:, 0], np.nanmean(Y[:, 0]))
    assert np.isfinite(pred).all()
    # nothing to learn (every column below the floor): no model, the means
    tiny = fast("pan-lightgbm", n_folds=2).fit(s["Z"][:3], Y[:3, 1:4])
    assert tiny.n_folds_ == 0
    np.testing.assert_allclose(tiny.predict(s["Z"][:5]), np.tile(np.nanmean(Y[:3, 1:4], 0), (5, 1)))


def test_correlation_loss(screen):
    s = screen
    head = fast("pan-mlp", descriptors=s["desc"], loss="correlation", n_folds=2)
    head.fit(s["Z"][s["tr"]], s["Y"][s["tr"]][:, :N_SEEN], perturbations=s["cols"][:N_SEEN])
    pred = head.predict(s["Z"][s["te"]])
    assert nan_spearman(pred, s["Y"][s["te"]][:, :N_SEEN]) > 0.35
    # the outputs are put back on the response scale by the calibration on the training pairs
    assert np.all(head.calibration_[:, 1] > 0)
    assert abs(np.nanmean(pred) - np.nanmean(s["Y"][s["tr"]][:, :N_SEEN])) < 0.5


@pytest.mark.parametrize("name", NAMES)
def test_reproducible_for_a_seed(screen, name):
    s = screen
    Z, Y = s["Z"][:60], s["Y"][:60, :8]
    kw = {"max_epochs": 4} if name != "pan-lightgbm" else {"n_estimators": 20}
    a = fast(name, descriptors=s["desc"].iloc[:8], n_folds=2, **kw).fit(Z, Y).predict(Z)
    b = fast(name, descriptors=s["desc"].iloc[:8], n_folds=2, **kw).fit(Z, Y).predict(Z)
    c = fast(name, descriptors=s["desc"].iloc[:8], n_folds=2, random_state=7, **kw)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c.fit(Z, Y).predict(Z))


@pytest.mark.parametrize("name", ["pan-mlp", "pan-lightgbm"])
def test_perturbations_without_descriptors(screen, name):
    s = screen
    Z, Ytr = s["Z"][s["tr"]], s["Y"][s["tr"]][:, :N_SEEN]
    Yte = s["Y"][s["te"]][:, :N_SEEN]
    # four perturbations lack a descriptor row: learned embedding / target encoding
    partial = s["desc"].iloc[4:N_SEEN]
    head = fast(name, descriptors=partial, n_folds=2).fit(Z, Ytr, perturbations=s["cols"][:N_SEEN])
    assert head.has_descriptor_.tolist() == [False] * 4 + [True] * (N_SEEN - 4)
    pred = head.predict(s["Z"][s["te"]])
    assert nan_spearman(pred[:, 4:], Yte[:, 4:]) > 0.3
    assert nan_spearman(pred[:, :4], Yte[:, :4]) > 0.1
    # no descriptors at all: embeddings only; nothing to predict unscreened perturbations from
    none = fast(name, n_folds=2).fit(Z, Ytr)
    assert nan_spearman(none.predict(s["Z"][s["te"]]), Yte) > 0.2
    with pytest.raises(InputError, match="without descriptors"):
        none.predict_perturbations(s["Z"][s["te"]], s["desc"])


def test_descriptors_matched_on_the_symbol(screen):
    assert perturbation_symbol("A1BG (1)") == "A1BG"
    assert perturbation_symbol("Nutlin-3a (-)") == "Nutlin-3a (-)"
    assert match_descriptors(["TP53", "A1BG (1)"], ["A1BG", "TP53 (7157)", "MYC"]).tolist() == [
        1,
        0,
        -1,
    ]
    s = screen
    desc = s["desc"].iloc[:6]
    names = [f"{c} ({i + 1})" for i, c in enumerate(desc.index)]
    head = fast("pan-lightgbm", descriptors=desc, n_folds=2, n_estimators=10)
    head.fit(s["Z"][:60], s["Y"][:60, :6], perturbations=names)
    assert head.has_descriptor_.all()


def test_bad_parameters_and_inputs(screen):
    s = screen
    Z, Y = s["Z"][:40], s["Y"][:40, :4]
    cases = [
        (PanMLPHead(loss="huber"), "loss"),
        (PanMLPHead(hidden_layers=()), "hidden_layers"),
        (PanMLPHead(learning_rate=0), "learning_rate"),
        (PanMLPHead(device="nope"), "device"),
        (PanTDNNHead(sample_layers=(0,)), "sample_layers"),
        (PanLightGBMHead(colsample_bytree=0), "colsample_bytree"),
        (PanLightGBMHead(n_folds=0), "n_folds"),
        (PanMLPHead(val_fraction=0.9), "val_fraction"),
        (PanMLPHead(descriptors=s["desc"].iloc[:3]), "3 rows but Y has 4 columns"),
        (PanMLPHead(descriptors=pd.DataFrame({"a": ["x"] * 4})), "not numeric"),
        (PanMLPHead(descriptors=np.zeros((4, 2))), "must be a pandas DataFrame"),
    ]
    for head, message in cases:
        with pytest.raises(InputError, match=message):
            head.fit(Z, Y)
    head = fast("pan-lightgbm", descriptors=s["desc"].iloc[:4], n_folds=2, n_estimators=5)
    head.fit(Z, Y)
    with pytest.raises(InputError, match="lacks 4 column"):
        head.predict_perturbations(Z, pd.DataFrame({"other": [1.0]}, index=["X"]))


@pytest.mark.parametrize("name", ["pan-tdnn", "pan-lightgbm"])
def test_saved_state_round_trip(fitted, screen, name):
    s = screen
    head = fitted[name]
    state = get_state(head)
    for arr in state.arrays.values():
        assert arr.dtype != object
    loaded = set_state(type(head), json.loads(json.dumps(state)), state.arrays, state.texts)
    Zte = s["Z"][s["te"]]
    np.testing.assert_allclose(loaded.predict(Zte), head.predict(Zte), rtol=1e-6, atol=1e-9)
    held = s["desc"].iloc[N_SEEN:]
    np.testing.assert_allclose(
        loaded.predict_perturbations(Zte, held),
        head.predict_perturbations(Zte, held),
        rtol=1e-6,
        atol=1e-9,
    )
    assert isinstance(loaded.descriptors, DescriptorTable)
    pd.testing.assert_frame_equal(loaded.descriptors, head.descriptors)


def test_leap_round_trip_in_fresh_process(tmp_path):
    from leapscreen.ensemble import LEAP

    data, truth = simulate_screen(n_samples=90, n_genes=120, n_perturbations=6, random_state=1)
    cols = list(data.responses.columns)
    desc = DescriptorTable(truth.programme_coef.T.loc[cols])
    head = PanMLPHead(descriptors=desc, hidden_layers=(16,), max_epochs=5, n_folds=2)
    model = LEAP(representation="pca", n_seeds=1, latent_dim=8, n_genes=100, head=head)
    model.fit(data.expression.iloc[:70], data.responses.iloc[:70])
    path = tmp_path / "model"
    model.save(path)
    new = data.expression.iloc[70:]
    new.to_parquet(tmp_path / "new.parquet")
    code = (
        "import pandas as pd; from leapscreen.ensemble import LEAP;"
        f"m = LEAP.load({str(path)!r});"
        f"m.predict(pd.read_parquet({str(tmp_path / 'new.parquet')!r}))"
        f".to_parquet({str(tmp_path / 'pred.parquet')!r})"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    fresh = pd.read_parquet(tmp_path / "pred.parquet")
    np.testing.assert_allclose(fresh.to_numpy(), model.predict(new).to_numpy(), atol=1e-6)
    for f in path.glob("*.npz"):
        with np.load(f, allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)
    assert not list(path.glob("*.pkl")) and not list(path.glob("*.pt"))


def test_gene_set_descriptors():
    sets = {"S1": ["A", "B", "C"], "S2": ["B", "D"], "S3": ["A", "E", "F"], "S4": ["F", "G"]}
    table = gene_set_descriptors(sets, ["B (12)", "Z", "A"], n_components=256)
    assert isinstance(table, DescriptorTable)
    assert list(table.index) == ["B (12)", "A"]  # Z is in no set: no descriptor
    assert list(table.columns) == ["PC1", "PC2", "PC3", "PC4"]  # capped at the number of sets
    genes = list(dict.fromkeys(g for m in sets.values() for g in m))
    M = np.array([[g in m for m in sets.values()] for g in genes], dtype=float)
    ref = PCA(4).fit_transform(M)
    ours = membership_pca(M, 4)
    np.testing.assert_allclose(np.abs(ours), np.abs(ref), atol=1e-10)
    full = gene_set_descriptors(sets)
    np.testing.assert_allclose(full.loc[["B", "A"]].to_numpy(), table.to_numpy())


def test_gene_set_descriptors_from_an_msigdb_file():
    path = "/work/shared/data/gene_sets/msigdb_hallmark.gmt"
    if not os.path.exists(path):
        pytest.skip("MSigDB hallmark file not available")
    sets = read_gmt(path)
    table = gene_set_descriptors(sets, ["TP53 (7157)", "MYC", "NOT_A_GENE"])
    assert table.shape == (2, len(sets)) and list(table.index) == ["TP53 (7157)", "MYC"]
    assert np.isfinite(table.to_numpy()).all()
