"""Options shared by commands: config files checked against the command, ranges, device, models.

Everything here runs before any data is read or any model is fitted, so a typo costs nothing.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import typer

from leapscreen.errors import InputError
from leapscreen.persist.model import sha256_file

# options a config file may not set (they are about this one run, not about the model)
_NOT_IN_CONFIG = {"config", "quiet", "verbose", "help", "version"}


def _option_name(param: Any) -> str:
    longs = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    return longs[0] if longs else f"--{param.name.replace('_', '-')}"


def _params(ctx: typer.Context) -> dict[str, Any]:
    return {p.name: p for p in ctx.command.params if p.name}


def _closest(key: str, choices: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def read_config(path: Path) -> dict[str, Any]:
    """Parse a JSON or TOML config file (by suffix; JSON otherwise) into a dict."""
    if not path.is_file():
        raise InputError("config file not found", path=path, fix="check the --config path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(
            "config file is not UTF-8 text", path=path, fix="save it as UTF-8 JSON or TOML"
        ) from None
    try:
        if path.suffix.lower() in (".toml", ".tml"):
            import tomllib

            cfg = tomllib.loads(text)
        else:
            cfg = json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError
        kind = "TOML" if path.suffix.lower() in (".toml", ".tml") else "JSON"
        raise InputError(
            f"cannot parse the config file as {kind}: {exc}",
            path=path,
            fix="give valid JSON (.json) or TOML (.toml)",
        ) from None
    if not isinstance(cfg, dict):
        raise InputError(
            f"config file holds a {type(cfg).__name__}, not a table of options",
            path=path,
            fix='write an object such as {"seeds": 2, "latent_dim": 64}',
        )
    return cfg


def _kind(param: Any) -> str:
    """The option's value type: boolean, integer, float, path or text."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is None:
        name = getattr(getattr(param, "type", None), "name", "text")
        return {"int": "integer", "bool": "boolean", "str": "text"}.get(name, name)
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            return "boolean"
        if issubclass(annotation, int):
            return "integer"
        if issubclass(annotation, float):
            return "float"
        if issubclass(annotation, Path):
            return "path"
    return "text"


def _convert(value: Any, param: Any, key: str, path: Path) -> Any:
    """Check a config value against the option's type; return it as the command would get it."""
    kind = _kind(param)
    is_flag = bool(getattr(param, "is_flag", False))
    option = _option_name(param)

    def bad(expected: str) -> InputError:
        return InputError(
            f"config key '{key}' must be {expected}, got {value!r} ({type(value).__name__})",
            path=path,
            fix=f"write {key} as {expected} (the same as the option {option})",
        )

    if is_flag or kind == "boolean":
        if not isinstance(value, bool):
            raise bad("true or false (JSON/TOML booleans, not strings)")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if not isinstance(value, str):
        if key in ("models", "perturbations") and isinstance(value, list):
            if all(isinstance(v, str) for v in value):
                return ",".join(value)
        raise bad("a string")
    if kind == "path":
        return Path(value)
    return value


def apply_config(ctx: typer.Context, config: Path | None, values: dict[str, Any]) -> dict[str, Any]:
    """Merge a config file into the command's option values; explicit command-line options win.

    Parameters
    ----------
    ctx : typer.Context
        The running command (its options are the allowed config keys).
    config : Path or None
        The ``--config`` file.
    values : dict
        Option name -> value as parsed from the command line (defaults included).

    Returns
    -------
    dict
        ``values`` with every option the user did not type taken from the config.
    """
    values = dict(values)
    if config is None:
        return values
    cfg = read_config(config)
    params = _params(ctx)
    allowed = {name: p for name, p in params.items() if name not in _NOT_IN_CONFIG}
    unknown = [k for k in cfg if str(k).replace("-", "_") not in allowed]
    if unknown:
        hints = {k: _closest(str(k).replace("-", "_"), allowed) for k in unknown}
        described = ", ".join(
            f"'{k}'" + (f" (did you mean '{h}'?)" if h else "") for k, h in hints.items()
        )
        raise InputError(
            f"unknown config key{'s' if len(unknown) > 1 else ''} {described} "
            f"for `leapscreen {ctx.command.name}`",
            path=config,
            fix=f"use only these keys: {', '.join(sorted(allowed))}",
        )
    for raw_key, value in cfg.items():
        key = str(raw_key).replace("-", "_")
        param = allowed[key]
        converted = _convert(value, param, key, config)
        source = ctx.get_parameter_source(key)
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT", "PROMPT"):
            continue  # what the user typed wins over the file
        values[key] = converted
    return values


# ---------------------------------------------------------------------------------- checks


def check_range(
    option: str,
    value: float | int | None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_min: bool = False,
    why: str = "",
) -> None:
    """Raise :class:`InputError` naming ``option`` when ``value`` is outside its range."""
    if value is None:
        return
    low_bad = minimum is not None and (value <= minimum if exclusive_min else value < minimum)
    high_bad = maximum is not None and value > maximum
    if not (low_bad or high_bad):
        return
    if minimum is not None and maximum is not None:
        rng = f"{'>' if exclusive_min else '>='} {minimum} and <= {maximum}"
    elif minimum is not None:
        rng = f"{'>' if exclusive_min else '>='} {minimum}"
    else:
        rng = f"<= {maximum}"
    raise InputError(
        f"{option} must be {rng}, got {value}" + (f" ({why})" if why else ""),
        fix=f"pass {option} with a value {rng}",
    )


def check_ranges(values: Mapping[str, Any], ranges: Mapping[str, dict[str, Any]]) -> None:
    """Check several options: ``ranges`` maps an option name (``--seeds``) to check_range kwargs."""
    for option, spec in ranges.items():
        key = option.lstrip("-").replace("-", "_")
        check_range(option, values.get(key), **spec)


def check_choice(option: str, value: str, choices: Iterable[str]) -> None:
    """``value`` must be one of ``choices`` (closest one suggested)."""
    choices = list(choices)
    if value in choices:
        return
    hint = _closest(value, choices)
    raise InputError(
        f"{option} {value!r} is not valid" + (f" (did you mean '{hint}'?)" if hint else ""),
        fix=f"choose one of {', '.join(choices)}",
    )


def check_models(option: str, names: list[str], with_baselines: bool = True) -> None:
    """Every name must be a registered model (:func:`leapscreen.models.model_names`).

    ``with_baselines=False`` (``fit``): the lineage baselines are refused with the reason.
    """
    from leapscreen.models import BASELINES, model_names

    valid = list(model_names(with_baselines=with_baselines))
    baselines = [n for n in names if n in BASELINES and n not in valid]
    if baselines:
        raise InputError(
            f"{option} {baselines[0]!r} is an evaluation baseline: it predicts from the lineage of "
            "each sample, not from expression, so it is not saved as a model",
            fix=f"compare it with `leapscreen evaluate --models {baselines[0]},ridge,...`",
        )
    if not names:
        raise InputError(f"{option} lists no model", fix=f"choose from {', '.join(valid)}")
    unknown = [n for n in names if n not in valid]
    if unknown:
        hints = [h for h in (_closest(n, valid) for n in unknown) if h]
        raise InputError(
            f"{option}: unknown model{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)}"
            + (f" (did you mean {', '.join(repr(h) for h in hints)}?)" if hints else ""),
            fix=f"choose from {', '.join(valid)}",
        )


def check_device(device: str, option: str = "--device") -> str:
    """A torch device that exists on this machine: cpu, cuda, cuda:N (or mps on macOS)."""
    d = str(device).strip().lower()
    if d == "cpu":
        return d
    m = re.fullmatch(r"cuda(?::(\d+))?", d)
    if m:
        import torch

        if not torch.cuda.is_available():
            raise InputError(
                f"{option} {device!r}: this machine has no usable CUDA GPU "
                "(or torch was installed without CUDA)",
                fix=f"use {option} cpu, or run on a machine with a CUDA GPU",
            )
        n = torch.cuda.device_count()
        if m.group(1) is not None and int(m.group(1)) >= n:
            raise InputError(
                f"{option} {device!r}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})",
                fix=f"use {option} cuda:0 .. cuda:{n - 1}",
            )
        return d
    if d == "mps":
        import torch

        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise InputError(f"{option} 'mps' is not available here", fix=f"use {option} cpu")
        return d
    raise InputError(
        f"{option} {device!r} is not a torch device",
        fix=f"use {option} cpu, cuda or cuda:N",
    )


def split_list(option: str, text: str) -> list[str]:
    """A comma-separated option as a list; an empty list (e.g. ``","``) is an error."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise InputError(f"{option} {text!r} names nothing", fix=f"give {option} NAME[,NAME...]")
    return items


def read_genes(path: Path | None, encoding: str | None = None) -> list[str] | None:
    """``--genes FILE``: the gene list (None without the option); an empty list is an error."""
    if path is None:
        return None
    try:
        from leapscreen.data import read_gene_list
    except ImportError:  # not re-exported yet
        from leapscreen.data.genesets import read_gene_list

    genes = read_gene_list(path, encoding=encoding) if encoding else read_gene_list(path)
    if not genes:
        raise InputError(
            "the gene list (--genes) names no gene",
            path=path,
            fix="list one gene symbol a line, or a table with a 'gene' column",
        )
    return list(genes)


# ------------------------------------------------------------------------------- provenance


def _describe_input(option: str, path: Path | str) -> dict[str, Any]:
    p = Path(path)
    entry: dict[str, Any] = {"option": option, "path": str(path)}
    if str(path) == "demo":
        from leapscreen.datasets import __name__ as ds

        entry["dataset"] = f"{ds}.gdsc_demo (bundled)"
        return entry
    if p.is_file():
        entry["name"] = p.name
        entry["sha256"] = sha256_file(p)
        entry["bytes"] = p.stat().st_size
    elif p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
        entry["name"] = p.name
        entry["files"] = [
            {"name": str(f.relative_to(p)), "sha256": sha256_file(f)} for f in files[:200]
        ]
    return entry


def command_line(ctx: typer.Context) -> list[str]:
    """The command as typed (every option the user gave, in canonical long form)."""
    names = []
    c: Any = ctx
    while c is not None:
        names.append(c.info_name or "leapscreen")
        c = c.parent
    words = ["leapscreen", *reversed(names[:-1])]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params.get(param.name)
        if not getattr(param, "opts", None) or not param.opts[0].startswith("-"):
            words.append(str(value))  # an argument
        elif getattr(param, "is_flag", False):
            if value:
                words.append(_option_name(param))
        else:
            words += [_option_name(param), str(value)]
    return words


def provenance(
    inputs: Mapping[str, Path | str | None], ctx: typer.Context | None = None, **extra: Any
) -> dict[str, Any]:
    """How a result was made: the command line, the input files with sha256, the package version.

    Parameters
    ----------
    inputs : mapping
        Option (``--expression``) -> path given (``None`` entries skipped).
    ctx : typer.Context, optional
        The running command: its options as typed become ``command_line``.
    **extra
        Further JSON-able entries (e.g. ``value="LN_IC50"``).
    """
    from leapscreen._version import __version__

    return {
        "command_line": command_line(ctx) if ctx is not None else list(sys.argv),
        "argv": list(sys.argv),
        "leapscreen_version": __version__,
        "python": sys.version.split()[0],
        "inputs": [_describe_input(opt, p) for opt, p in inputs.items() if p is not None],
        **extra,
    }


def learns_latent(model: Any) -> bool:
    """The model learns a latent representation (so --latent-dim must fit the data)."""
    kinds = getattr(model, "representation_kinds", None)
    return kinds is not None and any(kind != "genes" for kind in kinds)
