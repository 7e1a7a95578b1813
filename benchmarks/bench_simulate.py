"""Wall time and peak memory of simulate_screen at 1/10 of DepMap scale and at DepMap scale.

Run: ``/usr/bin/time -v python benchmarks/bench_simulate.py`` (the 1/10 run goes first, so the
peak RSS printed after it is its own; the one after the full run is the process peak).
"""

from __future__ import annotations

import resource
import sys
import time

from leapscreen.data.simulate import simulate_screen

DEPMAP = (1_100, 19_000, 18_000)  # samples, genes, perturbations


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 ** (2 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB on Linux


def run(n_samples: int, n_genes: int, n_perturbations: int) -> float:
    start = time.perf_counter()
    data, truth = simulate_screen(n_samples, n_genes, n_perturbations, random_state=0)
    wall = time.perf_counter() - start
    print(
        f"{n_samples:>6,} samples x {n_genes:>6,} genes x {n_perturbations:>6,} perturbations: "
        f"{wall:6.2f} s, peak RSS so far {_peak_rss_mib():7.0f} MiB "
        f"(missing {data.missing_fraction():.1%}, {truth.coef.nnz:,} driver coefficients)",
        flush=True,
    )
    del data, truth
    return wall


def main() -> None:
    small = run(*(max(1, x // 10) for x in DEPMAP))
    full = run(*DEPMAP)
    print(f"DepMap scale / (1/10 scale) wall-time ratio: {full / small:.1f}")


if __name__ == "__main__":
    main()
