"""Step 0 of :func:`~leapscreen.data.simulate.simulate_screen`: check the arguments.

:func:`check_params` turns the arguments into the validated ``params`` dict recorded in
:attr:`SimulationTruth.params`; every other step reads its settings from it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leapscreen.errors import InputError

__all__ = ["check_params"]


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(
            f"{name} must be an integer >= {minimum}, got {value!r}",
            fix=f"pass {name}={minimum} or more",
        )
    return int(value)


def _check_fraction(value: Any, name: str, upper_open: bool = False) -> float:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = 0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0
    if not ok:
        bound = "[0, 1)" if upper_open else "[0, 1]"
        raise InputError(
            f"{name} must be a number in {bound}, got {value!r}", fix=f"pass {name} within {bound}"
        )
    return float(value)


def check_params(
    n_samples: Any,
    n_genes: Any,
    n_perturbations: Any,
    n_lineages: Any,
    n_programmes: Any,
    frac_missing: Any,
    kind: Any,
    noise: Any,
    random_state: Any,
    frac_common_essential: Any,
    frac_null: Any,
    frac_programme_driven: Any,
    frac_lineage_specific: Any,
    mean_driver_genes: Any,
    max_driver_genes: Any,
    module_size: Any,
    block_missing: Any,
    lineage_strength: Any,
    name: str,
) -> dict[str, Any]:
    """The arguments of ``simulate_screen``, checked and with their defaults resolved.

    Raises
    ------
    InputError
        An argument out of range.
    """
    n = _check_int(n_samples, "n_samples", 2)
    n_genes = _check_int(n_genes, "n_genes", 1)
    n_pert = _check_int(n_perturbations, "n_perturbations", 1)
    n_lin = _check_int(n_lineages, "n_lineages", 1)
    if n_lin > n:
        raise InputError(
            f"n_lineages ({n_lin}) exceeds n_samples ({n})", fix="ask for fewer lineages"
        )
    n_prog = _check_int(n_programmes, "n_programmes", 0)
    frac_missing = _check_fraction(frac_missing, "frac_missing", upper_open=True)
    if kind not in ("gene", "drug"):
        raise InputError(f"kind must be 'gene' or 'drug', got {kind!r}", fix="pass kind='gene'")
    if not isinstance(noise, (int, float, np.floating)) or not np.isfinite(noise) or noise < 0:
        raise InputError(f"noise must be a finite number >= 0, got {noise!r}", fix="pass noise=1")
    if frac_common_essential is None:
        frac_common_essential = 0.1 if kind == "gene" else 0.0
    frac_ce = _check_fraction(frac_common_essential, "frac_common_essential")
    frac_null = _check_fraction(frac_null, "frac_null")
    frac_prog = _check_fraction(frac_programme_driven, "frac_programme_driven")
    frac_lin = _check_fraction(frac_lineage_specific, "frac_lineage_specific")
    if not mean_driver_genes >= 1:
        raise InputError(
            f"mean_driver_genes must be >= 1, got {mean_driver_genes!r}",
            fix="pass mean_driver_genes=1.5",
        )
    max_drivers = _check_int(max_driver_genes, "max_driver_genes", 1)
    if module_size is None:
        module_size = max(5, round(0.02 * n_genes))
    module_size = min(_check_int(module_size, "module_size", 1), n_genes)
    if block_missing is None:
        block_missing = kind == "drug"
    if not lineage_strength >= 0:
        raise InputError(
            f"lineage_strength must be >= 0, got {lineage_strength!r}",
            fix="pass lineage_strength=1",
        )
    return {
        "n_samples": n,
        "n_genes": n_genes,
        "n_perturbations": n_pert,
        "n_lineages": n_lin,
        "n_programmes": n_prog,
        "frac_missing": frac_missing,
        "kind": kind,
        "noise": float(noise),
        "random_state": None if random_state is None else int(random_state),
        "frac_common_essential": frac_ce,
        "frac_null": frac_null,
        "frac_programme_driven": frac_prog,
        "frac_lineage_specific": frac_lin,
        "mean_driver_genes": float(mean_driver_genes),
        "max_driver_genes": max_drivers,
        "module_size": module_size,
        "block_missing": bool(block_missing),
        "lineage_strength": float(lineage_strength),
        "name": name,
    }
