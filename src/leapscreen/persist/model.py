"""Model directories: arrays (.npz, loaded with ``allow_pickle=False``) + one JSON file. No pickle.

Layout::

    model/
      leapscreen_model.json   format, format_version, package version, the model's class and its
                              state (constructor parameters, fitted attributes, nested parts: see
                              :func:`leapscreen.base.get_state`), an index of the arrays (name, shape,
                              dtype), the sha256 of every other file, a summary (genes, perturbations,
                              members, training-data fingerprint) and the caller's metadata
      arrays.npz              every numeric array of the state
      texts.json              text states (e.g. LightGBM boosters in LightGBM's own text format),
                              one JSON object key -> text, if any (format 2: one text_NNN.txt each)

Persistence knows no model internals: what is saved is what :func:`~leapscreen.base.get_state`
captures, and loading rebuilds only registered classes (:mod:`leapscreen.registry`). Loading checks
everything before use - the JSON, the format version, that every file name stays inside the
directory, every checksum, the array index, the parameters, and that the arrays fit together (a
prediction through every part) - and reports a damaged directory as :class:`ModelFormatError`
naming the directory and the file. It works on a machine without a GPU.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from leapscreen._version import __version__
from leapscreen.base import get_state, set_state
from leapscreen.errors import ModelFormatError
from leapscreen.persist.atomic import (
    check_replaceable,
    publish_directory,
    refuse_existing,
    target_lock,
)

FORMAT = "leapscreen.LEAP"
FORMAT_VERSION = 3
#: the oldest format this version reads (2: one file per text state)
OLDEST_FORMAT = 2
TEXTS_FILE = "texts.json"
META_FILE = "leapscreen_model.json"
ARRAYS_FILE = "arrays.npz"


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file's bytes (model checksums, input provenance)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _summary(model: Any) -> dict[str, Any]:
    """What a reader (``leapscreen inspect``) wants without loading arrays; not used to load."""
    members = [
        {
            "kind": m.kind,
            "seed": int(m.seed),
            "head": m.head_kind,
            "representation_class": type(m.representation).__name__,
            "head_class": type(m.head).__name__,
            "fit_seconds": float(m.fit_seconds),
        }
        for m in getattr(model, "members_", [])
    ]
    return {
        "genes": [str(g) for g in model.preprocessor_.genes_],
        "perturbations": [str(p) for p in model.perturbations_],
        "training_fingerprint": getattr(model, "fingerprint_", None),
        "members": members,
    }


def save_model(model, directory, overwrite: bool = False, metadata: dict[str, Any] | None = None):
    """Save a fitted model as a directory of arrays + JSON.

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
    target = refuse_existing(
        directory,
        overwrite,
        what="output directory",
        fix="choose a new directory or pass --overwrite",
        directory=True,
    )
    state = get_state(model)
    metadata = metadata or {}
    json.dumps(metadata)  # fail before writing anything if the metadata is not JSON-able
    target.parent.mkdir(parents=True, exist_ok=True)
    with target_lock(target):
        if overwrite:
            check_replaceable(target)
        return _write(model, state, metadata, target)


def _write(model: Any, state: Any, metadata: dict[str, Any], target: Path) -> Path:
    """Write the directory beside ``target``, then publish it atomically (the lock is held)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        index = {}
        stored = {}
        for i, (key, arr) in enumerate(state.arrays.items()):
            name = f"a{i}"
            arr = np.ascontiguousarray(arr)
            stored[name] = arr
            index[key] = {"name": name, "shape": list(arr.shape), "dtype": arr.dtype.str}
        np.savez(tmp / ARRAYS_FILE, **stored)
        # every text state in one JSON file (a model may hold thousands of boosters)
        texts = {key: TEXTS_FILE for key in state.texts}
        if texts:
            (tmp / TEXTS_FILE).write_text(json.dumps(dict(state.texts)), encoding="utf-8")
        files = [ARRAYS_FILE, *sorted(set(texts.values()))]
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "leapscreen_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "class": type(model).__name__,
            "state": dict(state),
            "arrays": index,
            "texts": texts,
            "sha256": {name: sha256_file(tmp / name) for name in files},
            **_summary(model),
            "metadata": metadata,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        publish_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# ------------------------------------------------------------------------------------ loading


def _damaged(directory: Path, name: str, problem: str) -> ModelFormatError:
    return ModelFormatError(
        f"model directory '{directory}' is damaged: {name} {problem}; "
        "fit the model again (`leapscreen fit`) or restore the directory from a backup"
    )


def read_model_meta(directory) -> dict[str, Any]:
    """Read and check the JSON of a model directory (format, version, required keys)."""
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not directory.is_dir():
        raise ModelFormatError(f"model directory '{directory}' not found (check the path)")
    if not meta_path.is_file():
        raise ModelFormatError(
            f"'{directory}' is not a leapscreen model directory: {META_FILE} is missing "
            "(fit one with `leapscreen fit`)"
        )
    raw = meta_path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(directory, META_FILE, "is not UTF-8 text") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _damaged(directory, META_FILE, f"is not valid JSON (truncated?) ({exc})") from None
    if not isinstance(meta, dict):
        raise _damaged(directory, META_FILE, f"holds a JSON {type(meta).__name__}, not an object")
    if meta.get("format") != FORMAT:
        raise ModelFormatError(
            f"'{directory}' holds a '{meta.get('format')}' file, not a {FORMAT} model"
        )
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _damaged(directory, META_FILE, f"has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"model format version {version} in '{directory}' is newer than leapscreen "
            f"{__version__} reads (up to {FORMAT_VERSION}); upgrade leapscreen"
        )
    if version < OLDEST_FORMAT:
        raise ModelFormatError(
            f"model format version {version} in '{directory}' was written by an older leapscreen "
            f"(0.1) whose layout this version ({__version__}) no longer reads; fit the model again"
        )
    for key, kind in (
        ("class", str),
        ("state", dict),
        ("arrays", dict),
        ("texts", dict),
        ("sha256", dict),
        ("genes", list),
        ("perturbations", list),
        ("members", list),
    ):
        if not isinstance(meta.get(key), kind):
            problem = "lacks" if key not in meta else "has a malformed"
            raise _damaged(directory, META_FILE, f"{problem} '{key}' entry")
    return meta


def _load_texts(directory: Path, meta: dict[str, Any]) -> dict[str, str]:
    """The text states: format 2 stores one plain file per text, format 3 one JSON object."""
    texts: dict[str, str] = {}
    bundles: dict[str, dict[str, Any]] = {}
    for key, name in meta["texts"].items():
        if meta["format_version"] < 3:
            texts[key] = _checked_file(directory, name, meta).read_text(encoding="utf-8")
            continue
        if name not in bundles:  # each file checked and read once
            path = _checked_file(directory, name, meta)
            try:
                bundle = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise _damaged(directory, name, f"is not valid JSON ({exc})") from None
            if not isinstance(bundle, dict):
                raise _damaged(directory, name, "is not a JSON object of texts")
            bundles[name] = bundle
        text = bundles[name].get(key)
        if not isinstance(text, str):
            raise _damaged(directory, name, f"lacks the text {key!r}")
        texts[key] = text
    return texts


def _inside(directory: Path, name: Any) -> Path:
    """The path of a file named in the JSON, refused unless it is a plain name inside ``directory``."""
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
    ):
        raise _damaged(directory, META_FILE, f"names a file {name!r} outside the model directory")
    path = directory / name
    root = directory.resolve()
    if path.resolve().parent != root:
        raise _damaged(directory, META_FILE, f"names a file {name!r} outside the model directory")
    return path


def _checked_file(directory: Path, name: Any, meta: dict[str, Any]) -> Path:
    path = _inside(directory, name)
    if not path.is_file():
        raise _damaged(directory, str(name), "is missing")
    expected = meta["sha256"].get(name)
    if not isinstance(expected, str):
        raise _damaged(directory, META_FILE, f"has no sha256 checksum for {name}")
    if sha256_file(path) != expected:
        raise _damaged(directory, str(name), "does not match its checksum")
    return path


def _load_arrays(directory: Path, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    path = _checked_file(directory, ARRAYS_FILE, meta)
    if not zipfile.is_zipfile(path):
        raise _damaged(directory, ARRAYS_FILE, "is not a .npz archive (truncated or replaced?)")
    stored: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for name in data.files:
                stored[name] = data[name]
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _damaged(
                directory, ARRAYS_FILE, "holds object arrays (refused: no pickle)"
            ) from None
        raise _damaged(directory, ARRAYS_FILE, f"cannot be read ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise _damaged(directory, ARRAYS_FILE, f"cannot be read ({exc})") from None
    arrays: dict[str, np.ndarray] = {}
    for key, entry in meta["arrays"].items():
        if not isinstance(entry, dict) or not {"name", "shape", "dtype"} <= set(entry):
            raise _damaged(directory, META_FILE, f"has a malformed array entry {key!r}")
        arr = stored.get(entry["name"])
        if arr is None:
            raise _damaged(directory, ARRAYS_FILE, f"lacks the array {key!r}")
        if list(arr.shape) != list(entry["shape"]) or arr.dtype.str != entry["dtype"]:
            raise _damaged(
                directory,
                ARRAYS_FILE,
                f"holds {key!r} of shape {list(arr.shape)} {arr.dtype.str}, but the JSON says "
                f"{entry['shape']} {entry['dtype']}",
            )
        if arr.dtype.kind not in "biufc":
            raise _damaged(directory, ARRAYS_FILE, f"holds {key!r} of dtype {arr.dtype}")
        arrays[key] = arr
    return arrays


def _self_check(directory: Path, model: Any, meta: dict[str, Any]) -> None:
    """The arrays fit together: gene / perturbation lists, shapes, one prediction through all parts."""
    genes = [str(g) for g in model.preprocessor_.genes_]
    if genes != [str(g) for g in meta["genes"]]:
        raise _damaged(directory, META_FILE, "lists genes that do not match the model's arrays")
    if [str(p) for p in model.perturbations_] != [str(p) for p in meta["perturbations"]]:
        raise _damaged(directory, META_FILE, "lists perturbations that do not match the model")
    n_genes, n_pert = len(genes), len(model.perturbations_)
    for name in ("mean_", "scale_"):
        arr = getattr(model.preprocessor_, name, None)
        if arr is not None and np.shape(arr) != (n_genes,):
            raise _damaged(directory, ARRAYS_FILE, f"has preprocessor {name} of the wrong shape")
    if model.gene_coef_ is not None and (
        np.shape(model.gene_coef_) != (n_genes, n_pert)
        or np.shape(model.gene_intercept_) != (n_pert,)
    ):
        raise _damaged(directory, ARRAYS_FILE, "has collapsed coefficients of the wrong shape")
    train = getattr(model, "training_expression_", None)  # absent in models of older versions
    if train is not None and (
        np.ndim(train) != 2
        or np.shape(train)[1] != n_genes
        or [str(c) for c in train.columns] != genes
    ):
        raise _damaged(directory, ARRAYS_FILE, "has a training expression of the wrong shape")
    n_train = None if train is None else np.shape(train)[0]
    lineages = getattr(model, "training_lineages_", None)
    if lineages is not None and n_train is not None and np.shape(lineages) != (n_train,):
        raise _damaged(directory, META_FILE, "has training lineages of the wrong length")
    calibration = getattr(model, "calibration_", None)
    if calibration is not None:
        problem = calibration.check(
            n_train if n_train is not None else np.shape(calibration.residuals)[0], n_pert
        )
        if problem:
            raise _damaged(directory, ARRAYS_FILE, f"has {problem}")
    if not model.members_:
        raise _damaged(directory, META_FILE, "holds no ensemble member")
    zero = np.zeros((1, n_genes), dtype=np.float32)
    for i, member in enumerate(model.members_):
        try:
            out = model._member_output(member, zero)
        except Exception as exc:  # noqa: BLE001 - any failure here means the parts do not fit
            raise _damaged(
                directory, ARRAYS_FILE, f"holds member {i} whose arrays do not fit together ({exc})"
            ) from None
        if out.shape != (1, n_pert):
            raise _damaged(directory, ARRAYS_FILE, f"holds member {i} of the wrong output shape")


def load_model(directory, device: str = "cpu", cls: type | None = None):
    """Load a model directory written by :func:`save_model` (no pickle; CPU by default).

    Parameters
    ----------
    directory : str or Path
    device : str
        Set on every part that has a ``device`` parameter.
    cls : type, optional
        The expected model class (``LEAP.load`` passes it); by default the registered class named
        in the directory.
    """
    from leapscreen.registry import class_by_name

    directory = Path(directory)
    meta = read_model_meta(directory)
    if cls is not None:
        if meta["class"] != cls.__name__:
            raise ModelFormatError(
                f"'{directory}' holds a {meta['class']} model, not a {cls.__name__}"
            )
        model_cls = cls
    else:
        try:
            model_cls = class_by_name(meta["class"])
        except KeyError:
            raise _damaged(
                directory, META_FILE, f"names an unknown class {meta['class']!r}"
            ) from None
    arrays = _load_arrays(directory, meta)
    texts = _load_texts(directory, meta)

    def resolve(class_name: str) -> type:
        try:
            return class_by_name(class_name)
        except KeyError:
            raise ValueError(f"unknown class {class_name!r}") from None

    try:
        model = set_state(
            model_cls, meta["state"], arrays, texts, params={"device": device}, resolve=resolve
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _damaged(
            directory, META_FILE, f"holds a state that cannot be rebuilt ({exc})"
        ) from None
    if not hasattr(model, "members_") or not hasattr(model, "preprocessor_"):
        raise _damaged(directory, META_FILE, "holds an unfitted model")
    _self_check(directory, model, meta)
    model.metadata_ = meta.get("metadata", {})
    return model
