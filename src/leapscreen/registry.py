"""One registry: name -> estimator class, for heads and representations.

A head or a representation is made available everywhere (LEAP's string shorthands, the presets and
model names of ``fit --model`` / ``evaluate --models``, persistence) by one decorator::

    @register_head("ps-knn")
    class PSKNNHead(LinearHeadMixin, BaseHead): ...

``leap_params`` maps LEAP's shared settings (``latent_dim``, ``n_folds``, ``random_state``,
``device``) to the constructor parameters that receive them when LEAP builds the estimator from its
name; by default a setting goes to the constructor parameter of the same name when there is one.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Entry",
    "build",
    "class_by_name",
    "get_entry",
    "head_names",
    "name_of",
    "register_component",
    "register_head",
    "register_representation",
    "representation_names",
]

Kind = Literal["head", "representation"]
LEAP_SETTINGS = ("latent_dim", "n_folds", "random_state", "device")


@dataclass(frozen=True)
class Entry:
    """A registered estimator: its name, class, kind and how LEAP's settings reach it."""

    name: str
    cls: type
    kind: Kind
    leap_params: Mapping[str, str] = field(default_factory=dict)

    def constructor_params(self) -> set[str]:
        return set(self.cls().get_params(deep=False))

    def settings(self, **values: Any) -> dict[str, Any]:
        """LEAP's shared settings translated to this class's constructor parameters."""
        accepted = self.constructor_params()
        out = {}
        for setting, value in values.items():
            target = self.leap_params.get(setting, setting)
            if target is not None and target in accepted:
                out[target] = value
        return out


_ENTRIES: dict[Kind, dict[str, Entry]] = {"head": {}, "representation": {}}
_COMPONENTS: dict[str, type] = {}
_BUILTINS_LOADED = False


def _register(
    kind: Kind, name: str, leap_params: Mapping[str, str] | None
) -> Callable[[type], type]:
    def decorator(cls: type) -> type:
        existing = _ENTRIES[kind].get(name)
        if existing is not None and existing.cls.__qualname__ != cls.__qualname__:
            raise ValueError(f"{kind} name {name!r} is already registered for {existing.cls}")
        _ENTRIES[kind][name] = Entry(name, cls, kind, dict(leap_params or {}))
        return cls

    return decorator


def register_head(name: str, *, leap_params: Mapping[str, str] | None = None):
    """Class decorator: make a head available under ``name``."""
    return _register("head", name, leap_params)


def register_representation(name: str, *, leap_params: Mapping[str, str] | None = None):
    """Class decorator: make a representation available under ``name``."""
    return _register("representation", name, leap_params)


def register_component(cls: type) -> type:
    """Class decorator: a part that saved models may contain (a preprocessor, an aligner, a model).

    Persistence rebuilds only registered classes, so that loading a model never instantiates an
    arbitrary class named in a file.
    """
    _COMPONENTS[cls.__name__] = cls
    return cls


#: packages whose modules register the built-in estimators, imported on first look-up like plugins
BUILTIN_PACKAGES = ("leapscreen.heads", "leapscreen.represent")


def _load_builtins() -> None:
    """Import the built-in packages (once, lazily): their modules register themselves."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        for package in BUILTIN_PACKAGES:
            importlib.import_module(package)


def head_names() -> list[str]:
    """Registered head names, in registration order."""
    _load_builtins()
    return list(_ENTRIES["head"])


def representation_names() -> list[str]:
    """Registered representation names, in registration order."""
    _load_builtins()
    return list(_ENTRIES["representation"])


def get_entry(kind: Kind, name: str) -> Entry:
    """The entry of a registered name; ``ValueError`` naming the choices (and the closest) if not."""
    _load_builtins()
    table = _ENTRIES[kind]
    if name not in table:
        close = difflib.get_close_matches(str(name), list(table), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown {kind} {name!r}{hint}; choose from {', '.join(table)}")
    return table[name]


def name_of(estimator: Any) -> str:
    """The registered name of an estimator's class, else the class name."""
    _load_builtins()
    cls = type(estimator)
    for table in _ENTRIES.values():
        for entry in table.values():
            if entry.cls is cls:
                return entry.name
    return cls.__name__


def class_by_name(class_name: str) -> type:
    """A registered class from its ``__name__`` (what persistence stores); ``KeyError`` if none."""
    _load_builtins()
    for table in _ENTRIES.values():
        for entry in table.values():
            if entry.cls.__name__ == class_name:
                return entry.cls
    if class_name in _COMPONENTS:
        return _COMPONENTS[class_name]
    raise KeyError(class_name)


def build(kind: Kind, name: str, params: Mapping[str, Any] | None = None, **settings: Any) -> Any:
    """A fresh estimator from its registered name: LEAP ``settings`` translated, then ``params``."""
    entry = get_entry(kind, name)
    return entry.cls(**{**entry.settings(**settings), **dict(params or {})})
