"""Pan-perturbation heads: one model for all perturbations, on [sample representation, descriptor].

* :class:`PanMLPHead` ("pan-mlp"), :class:`PanTDNNHead` ("pan-tdnn"): neural networks (torch,
  imported on use), MSE or per-perturbation correlation loss, early stopping restoring the best
  weights, learned embeddings for perturbations without a descriptor;
* :class:`PanLightGBMHead` ("pan-lightgbm"): one booster on the pairs, a target encoding for
  perturbations without a descriptor;
* descriptors: :func:`gene_set_descriptors` (PCA of gene-set membership), :class:`DescriptorTable`
  (a DataFrame a saved model can hold), :func:`perturbation_symbol`.

Every pan head has ``predict_perturbations(Z, descriptors)`` for perturbations never screened.
"""

from leapscreen.heads.pan.boosting import PanLightGBMHead
from leapscreen.heads.pan.descriptors import (
    DescriptorTable,
    gene_set_descriptors,
    membership_pca,
    perturbation_symbol,
)
from leapscreen.heads.pan.mlp import PanMLPHead
from leapscreen.heads.pan.tdnn import PanTDNNHead

__all__ = [
    "DescriptorTable",
    "PanLightGBMHead",
    "PanMLPHead",
    "PanTDNNHead",
    "gene_set_descriptors",
    "membership_pca",
    "perturbation_symbol",
]
