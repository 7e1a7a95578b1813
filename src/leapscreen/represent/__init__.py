"""Representations of scaled expression: PCA, autoencoders (plain, masked, DAMAE), the genes,
RBF kernel features.

Importing this package does not import torch: the autoencoders load it when they are fitted,
used or loaded (``vime_corrupt``, a torch function, is imported on first access).
"""

from typing import Any

from leapscreen.represent.align import DEFAULT_SOURCE, SourceAligner, combat_shrink
from leapscreen.represent.autoencoder import DAMAE, PRIMARY_SOURCE, Autoencoder, MaskedAutoencoder
from leapscreen.represent.identity import IdentityRepresentation
from leapscreen.represent.kernel import RBFKernelRepresentation
from leapscreen.represent.pca import PCARepresentation

__all__ = [
    "DAMAE",
    "DEFAULT_SOURCE",
    "PRIMARY_SOURCE",
    "Autoencoder",
    "IdentityRepresentation",
    "MaskedAutoencoder",
    "PCARepresentation",
    "RBFKernelRepresentation",
    "SourceAligner",
    "combat_shrink",
    "vime_corrupt",
]


def __getattr__(name: str) -> Any:
    if name == "vime_corrupt":
        from leapscreen.represent._network import vime_corrupt

        return vime_corrupt
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
