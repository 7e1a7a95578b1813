"""Representations of scaled expression: PCA, autoencoders (plain, masked, DAMAE), alignment."""

from leapscreen.represent.align import DEFAULT_SOURCE, SourceAligner, combat_shrink
from leapscreen.represent.autoencoder import (
    DAMAE,
    PRIMARY_SOURCE,
    Autoencoder,
    MaskedAutoencoder,
    vime_corrupt,
)
from leapscreen.represent.pca import PCARepresentation

__all__ = [
    "DAMAE",
    "DEFAULT_SOURCE",
    "PRIMARY_SOURCE",
    "Autoencoder",
    "MaskedAutoencoder",
    "PCARepresentation",
    "SourceAligner",
    "combat_shrink",
    "vime_corrupt",
]
