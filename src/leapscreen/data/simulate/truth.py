"""What :func:`~leapscreen.data.simulate.simulate_screen` planted: :class:`SimulationTruth`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from leapscreen.errors import InputError

__all__ = ["SimulationTruth"]


@dataclass(repr=False)
class SimulationTruth:
    """Everything planted by :func:`simulate_screen` (see the module docstring for the model).

    Attributes
    ----------
    coef : scipy.sparse.csc_matrix
        genes x perturbations, float64: :math:`\\beta_{gp}`, on the stored expression scale
        (``data.expression``). Non-zero entries are the driver genes.
    intercept : pandas.Series
        :math:`\\alpha_p`, indexed by perturbation.
    programme_coef : pandas.DataFrame
        programmes x perturbations, :math:`\\gamma_{kp}` (mostly zero).
    lineage_coef : pandas.DataFrame
        lineages x perturbations, :math:`\\delta_{lp}`: lineage-specific response effects.
    noise_free : pandas.DataFrame
        samples x perturbations, float32: :math:`Y^*` (no noise, no missing values).
    noise_sd, signal_sd : pandas.Series
        :math:`\\tau_p` and :math:`s_p` per perturbation (the signal sd of a null perturbation is
        the scale its noise refers to; its noise-free response is constant).
    common_essential, null : pandas.Series
        bool per perturbation.
    programme_activity : pandas.DataFrame
        samples x programmes, :math:`A`.
    programme_loadings : scipy.sparse.csr_matrix
        programmes x genes, :math:`W`.
    gene_modules : dict of str to list of str
        The genes each programme loads on.
    expression_lineage_effects : pandas.DataFrame
        lineages x genes, float32: :math:`\\Lambda`.
    gene_mean, gene_noise_sd : pandas.Series
        :math:`\\mu_g` and :math:`\\sigma_g` per gene.
    sample_lineage : pandas.Series
        Lineage of each sample.
    params : dict
        The arguments of :func:`simulate_screen`.
    """

    coef: sp.csc_matrix
    intercept: pd.Series
    programme_coef: pd.DataFrame
    lineage_coef: pd.DataFrame
    noise_free: pd.DataFrame
    noise_sd: pd.Series
    signal_sd: pd.Series
    common_essential: pd.Series
    null: pd.Series
    programme_activity: pd.DataFrame
    programme_loadings: sp.csr_matrix
    gene_modules: dict[str, list[str]]
    expression_lineage_effects: pd.DataFrame
    gene_mean: pd.Series
    gene_noise_sd: pd.Series
    sample_lineage: pd.Series
    params: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"SimulationTruth(samples={self.noise_free.shape[0]}, genes={self.coef.shape[0]}, "
            f"perturbations={self.coef.shape[1]}, programmes={len(self.programmes)}, "
            f"lineages={len(self.lineages)}, driver_genes={self.coef.nnz}, "
            f"kind={self.params.get('kind')!r}, random_state={self.params.get('random_state')!r})"
        )

    @property
    def genes(self) -> pd.Index:
        """Gene names, in the row order of :attr:`coef`."""
        return self.gene_mean.index

    @property
    def perturbations(self) -> pd.Index:
        """Perturbation IDs, in the column order of :attr:`coef`."""
        return self.intercept.index

    @property
    def programmes(self) -> pd.Index:
        """Programme names."""
        return self.programme_activity.columns

    @property
    def lineages(self) -> pd.Index:
        """Lineage names."""
        return self.lineage_coef.index

    def driver_genes(self, perturbation: str) -> pd.Series:
        """The driver genes of one perturbation and their coefficients :math:`\\beta_{gp}`.

        Parameters
        ----------
        perturbation : str
            A perturbation ID.

        Returns
        -------
        pandas.Series
            Coefficients indexed by gene (empty for a null perturbation).
        """
        j = self._pert_pos(perturbation)
        col = self.coef[:, [j]].tocoo()
        order = np.argsort(col.row)
        return pd.Series(
            col.data[order], index=self.genes[col.row[order]], name=perturbation, dtype=np.float64
        )

    def driver_programmes(self, perturbation: str) -> pd.Series:
        """The programme drivers of one perturbation (non-zero :math:`\\gamma_{kp}`)."""
        self._pert_pos(perturbation)
        col = self.programme_coef[perturbation]
        return col[col != 0]

    def coefficients_long(self) -> pd.DataFrame:
        """Driver-gene coefficients as a long table: perturbation, gene, coefficient."""
        coo = self.coef.tocoo()
        order = np.lexsort((coo.row, coo.col))
        return pd.DataFrame(
            {
                "perturbation": self.perturbations[coo.col[order]].astype(str),
                "gene": self.genes[coo.row[order]].astype(str),
                "coefficient": coo.data[order],
            }
        )

    def _pert_pos(self, perturbation: str) -> int:
        try:
            return int(self.perturbations.get_loc(perturbation))
        except KeyError:
            raise InputError(
                f"unknown perturbation {perturbation!r}",
                fix="use an ID from SimulationTruth.perturbations (e.g. 'PERT00001')",
            ) from None
