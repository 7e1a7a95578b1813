"""Model directories: arrays (.npz, loaded with ``allow_pickle=False``) + one JSON file. No pickle.

Layout of a saved :class:`~leapscreen.ensemble.LEAP`::

    model/
      leapscreen_model.json    format, format_version, package version, parameters, genes,
                               perturbations, training-data fingerprint, members, sha256 of each array file
      preprocessor.npz         gene statistics (mean, scale) of the training expression
      collapsed.npz            gene_coef (genes x perturbations), gene_intercept — linear ensembles only
      member_000_rep.npz ...   each representation's arrays (encoder weights, PCA components)
      member_000_head.npz ...  each head's fitted arrays (fold coefficients, chosen alphas, CV scores)

The directory is written to a temporary sibling and renamed into place, so a crash never leaves a
half-written model where a good one was. Loading checks the format, the version and every file's sha256,
and works on a machine without a GPU.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from leapscreen._version import __version__
from leapscreen.errors import InputError, ModelFormatError
from leapscreen.persist.atomic import publish_directory

FORMAT = "leapscreen.LEAP"
FORMAT_VERSION = 1
META_FILE = "leapscreen_model.json"


def _registry() -> dict[str, type]:
    from leapscreen.ensemble import IdentityRepresentation
    from leapscreen.heads import ElasticNetHead, MeanHead, PSLassoHead, RidgeHead
    from leapscreen.represent import DAMAE, Autoencoder, MaskedAutoencoder, PCARepresentation

    classes = [
        IdentityRepresentation,
        PCARepresentation,
        Autoencoder,
        MaskedAutoencoder,
        DAMAE,
        PSLassoHead,
        ElasticNetHead,
        RidgeHead,
        MeanHead,
    ]
    return {c.__name__: c for c in classes}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _object_state(obj: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parameters and fitted arrays of an estimator, without pickle."""
    if hasattr(obj, "get_state"):
        params, arrays = obj.get_state()
        return {"via": "get_state", "params": params}, {k: np.asarray(v) for k, v in arrays.items()}
    params: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, value in vars(obj).items():
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise TypeError(f"cannot save object array {type(obj).__name__}.{key}")
            arrays[key] = value
        elif isinstance(value, np.generic):
            params[key] = value.item()
        elif isinstance(value, (type, np.dtype)):
            params[key] = np.dtype(value).name  # e.g. dtype=np.float64 -> "float64"
        elif isinstance(value, tuple):
            params[key] = list(value)
        elif _jsonable(value):
            params[key] = value
        else:
            raise TypeError(f"cannot save {type(obj).__name__}.{key} of type {type(value)}")
    return {"via": "attributes", "params": params}, arrays


def _object_from_state(
    cls: type, state: dict[str, Any], arrays: dict[str, np.ndarray], device: str
):
    if state["via"] == "get_state":
        try:
            return cls.from_state(state["params"], arrays, device=device)
        except TypeError:
            return cls.from_state(state["params"], arrays)
    obj = cls.__new__(cls)
    obj.__dict__.update(state["params"])
    obj.__dict__.update(arrays)
    return obj


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_npz(directory: Path, name: str, arrays: dict[str, np.ndarray]) -> str:
    np.savez(directory / name, **arrays)
    return name


def save_model(model, directory, overwrite: bool = False, metadata: dict[str, Any] | None = None):
    """Save a fitted LEAP model as a directory of arrays + JSON.

    Parameters
    ----------
    model : LEAP
        A fitted model.
    directory : str or Path
        Target directory; must not exist unless ``overwrite``.
    overwrite : bool
        Replace an existing model directory.
    metadata : dict, optional
        Extra JSON-able information to store (e.g. the command line, data paths).

    Returns
    -------
    Path
    """
    model._check_fitted()
    target = Path(directory)
    if target.exists() and not overwrite:
        raise InputError(
            "output directory exists; leapscreen never overwrites unless asked",
            path=target,
            fix="choose a new directory or pass --overwrite",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        files: dict[str, str] = {}
        pre_params, pre_arrays = model.preprocessor_.get_state()
        files["preprocessor"] = _write_npz(tmp, "preprocessor.npz", pre_arrays)
        if model.gene_coef_ is not None:
            files["collapsed"] = _write_npz(
                tmp,
                "collapsed.npz",
                {"gene_coef": model.gene_coef_, "gene_intercept": model.gene_intercept_},
            )
        members = []
        for i, m in enumerate(model.members_):
            rep_state, rep_arrays = _object_state(m.representation)
            head_state, head_arrays = _object_state(m.head)
            rep_file = _write_npz(tmp, f"member_{i:03d}_rep.npz", rep_arrays)
            head_file = _write_npz(tmp, f"member_{i:03d}_head.npz", head_arrays)
            members.append(
                {
                    "kind": m.kind,
                    "seed": int(m.seed),
                    "fit_seconds": float(m.fit_seconds),
                    "representation_class": type(m.representation).__name__,
                    "representation_state": rep_state,
                    "representation_file": rep_file,
                    "head_class": type(m.head).__name__,
                    "head_state": head_state,
                    "head_file": head_file,
                }
            )
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "leapscreen_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "params": model.get_params(),
            "genes": list(model.preprocessor_.genes_),
            "perturbations": list(model.perturbations_),
            "training_fingerprint": model.fingerprint_,
            "preprocessor": pre_params,
            "files": files,
            "members": members,
            "metadata": metadata or {},
        }
        all_files = [*files.values()] + [
            f for m in members for f in (m["representation_file"], m["head_file"])
        ]
        meta["sha256"] = {name: _sha256(tmp / name) for name in all_files}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        publish_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_model_meta(directory) -> dict[str, Any]:
    """Read and check the JSON of a model directory (format, version)."""
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not directory.is_dir():
        raise ModelFormatError(f"model directory '{directory}' not found")
    if not meta_path.is_file():
        raise ModelFormatError(
            f"'{directory}' is not a leapscreen model directory: {META_FILE} is missing "
            "(fit one with `leapscreen fit`)"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"'{meta_path}' is damaged: not valid JSON ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise ModelFormatError(
            f"'{directory}' holds a '{meta.get('format')}' file, not a {FORMAT} model"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFormatError(
            f"model format version {version} in '{directory}' is not supported by leapscreen "
            f"{__version__} (reads up to {FORMAT_VERSION}); upgrade leapscreen"
        )
    return meta


def _load_npz(directory: Path, name: str, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    path = directory / name
    if not path.is_file():
        raise ModelFormatError(f"model directory '{directory}' is damaged: {name} is missing")
    expected = meta.get("sha256", {}).get(name)
    if expected is not None and _sha256(path) != expected:
        raise ModelFormatError(
            f"model directory '{directory}' is damaged: {name} does not match its checksum"
        )
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def load_model(directory, device: str = "cpu"):
    """Load a model directory written by :func:`save_model` (no pickle; CPU by default)."""
    from leapscreen.ensemble import LEAP, Member
    from leapscreen.preprocess import Preprocessor

    directory = Path(directory)
    meta = read_model_meta(directory)
    registry = _registry()
    params = dict(meta["params"])
    params["device"] = device
    model = LEAP(**params)
    model.perturbations_ = list(meta["perturbations"])
    model.fingerprint_ = meta["training_fingerprint"]
    model.preprocessor_ = Preprocessor.from_state(
        meta["preprocessor"], _load_npz(directory, meta["files"]["preprocessor"], meta)
    )
    members = []
    for entry in meta["members"]:
        classes = (entry["representation_class"], entry["head_class"])
        for name in classes:
            if name not in registry:
                raise ModelFormatError(f"model directory '{directory}' names unknown class {name}")
        rep = _object_from_state(
            registry[classes[0]],
            entry["representation_state"],
            _load_npz(directory, entry["representation_file"], meta),
            device,
        )
        head = _object_from_state(
            registry[classes[1]],
            entry["head_state"],
            _load_npz(directory, entry["head_file"], meta),
            device,
        )
        members.append(Member(entry["kind"], entry["seed"], rep, head, entry["fit_seconds"]))
    model.members_ = members
    model.gene_coef_ = model.gene_intercept_ = None
    if "collapsed" in meta["files"]:
        arrays = _load_npz(directory, meta["files"]["collapsed"], meta)
        model.gene_coef_ = arrays["gene_coef"]
        model.gene_intercept_ = arrays["gene_intercept"]
    model.metadata_ = meta.get("metadata", {})
    return model
