"""The options that say which data to read and what to learn, shared by ``fit`` and ``evaluate``.

Declared once, so that the two commands cannot drift apart (names, defaults, help).
"""

from __future__ import annotations

import typer

from leapscreen.data.longtable import DUPLICATE_RULES

LATENT_DIM = typer.Option(256, "--latent-dim", help="Latent size (>= 1).")
N_GENES = typer.Option(5000, "--n-genes", help="Most-variant genes (>= 1).")
GENES = typer.Option(
    None, "--genes", help="File listing the genes to use instead of the most-variant ones."
)
VALUE = typer.Option(
    None, "--value", help="Response value to learn: LN_IC50, AUC, AAC, ... (by the file)."
)
ENCODING = typer.Option(None, "--encoding", help="Text encoding of the input files.")
LOG_TRANSFORM = typer.Option(
    False, "--log-transform", help="Expression is linear TPM: apply ln(1+x) first."
)
SAMPLE_COLUMN = typer.Option(None, "--sample-column", help="Long table: sample column.")
PERTURBATION_COLUMN = typer.Option(
    None, "--perturbation-column", help="Long table: perturbation column."
)
VALUE_COLUMN = typer.Option(None, "--value-column", help="Long table: value column.")
DUPLICATES = typer.Option(
    "mean", "--duplicates", help=f"Repeated measurements: {', '.join(DUPLICATE_RULES)}."
)
MIN_SHARED_SAMPLES = typer.Option(
    10, "--min-shared-samples", help="Fewest samples with expression and responses."
)

DATA = typer.Option(
    None, "--data", help="A dataset: directory or .h5ad written by leapscreen, or 'demo'."
)
EXPRESSION = typer.Option(None, "--expression", "-x", help="Expression file.")
RESPONSES = typer.Option(None, "--responses", "-y", help="Responses file.")
SAMPLES = typer.Option(None, "--samples", help="Sample metadata (e.g. Model.csv).")
CONFIG = typer.Option(
    None, "--config", help="JSON/TOML file with these options (typed options win)."
)
