r"""Simulated screens with DepMap's structure and a known ground truth.

:func:`simulate_screen` draws expression and responses from the generative model below, at any
size (DepMap scale, 1,100 samples x 19,000 genes x 18,000 perturbations, takes seconds and about
1 GB), and returns a :class:`~leapscreen.data.dataset.ScreenData` with a :class:`SimulationTruth`
that holds every planted quantity. :func:`write_simulated` writes both in the formats
leapscreen's readers take; :func:`read_simulation_truth` reads the truth back.

Generative model
----------------
Indices: sample :math:`i = 1..n`, gene :math:`g = 1..G`, perturbation :math:`p = 1..P`,
programme :math:`k = 1..K`, lineage :math:`l = 1..L`; :math:`\lambda` is ``lineage_strength``.

*Lineages.* Proportions :math:`\pi \sim \mathrm{Dirichlet}(2 \cdot 1_L)`; every lineage gets
``min(2, n // L)`` samples, the others are drawn from :math:`\mathrm{Multinomial}(\pi)`, and the
labels are shuffled. :math:`l(i)` is the lineage of sample :math:`i`.

*Programme activities* (latent biological programmes, samples x programmes):

.. math:: A_{ik} = M_{l(i)k} + \varepsilon_{ik}, \quad M_{lk} \sim N(0, \lambda^2),
          \quad \varepsilon_{ik} \sim N(0, 1).

*Gene modules.* Programme :math:`k` loads on a module :math:`S_k` of ``module_size`` genes drawn
without replacement (modules may overlap), with loadings :math:`W_{kg} = s_{kg} u_{kg}`,
:math:`s_{kg} = +1` with probability 0.8 (else -1), :math:`u_{kg} \sim U(0.3, 1)`;
:math:`W_{kg} = 0` for :math:`g \notin S_k`.

*Gene parameters.* A gene is *silent* with probability 0.3: baseline
:math:`\mu_g \sim U(-2, 0.5)`, noise sd :math:`\sigma_g \sim \mathrm{LogNormal}(\ln 0.6, 0.4)`;
otherwise *expressed*: :math:`\mu_g \sim U(8, 13)` with probability 0.015 (very highly expressed
genes), else :math:`\mu_g \sim N(3.6, 1.8^2)` clipped to [0.5, 13], and
:math:`\sigma_g \sim \mathrm{LogNormal}(\ln 0.6, 0.5)`. Lineage effects on expression:
:math:`\Lambda_{lg} = \kappa_{lg} + m_{lg} \eta_{lg}`, with
:math:`\kappa_{lg} \sim N(0, (0.2\lambda)^2)`, marker indicators
:math:`m_{lg} \sim \mathrm{Bernoulli}(0.05)` and :math:`\eta_{lg} \sim N(0, (2\lambda)^2)`.

*Expression* (log2(TPM+1)-like: non-negative, 20-25% exact zeros, per-gene means from 0 to
about 13 and sds from 0 to about 4, as in DepMap):

.. math:: X_{ig} = \min\Big(x_{\max}, \max\Big(0,\; \mu_g + \Lambda_{l(i)g}
          + \sum_k A_{ik} W_{kg} + \sigma_g \epsilon_{ig}\Big)\Big),
          \quad \epsilon_{ig} \sim N(0, 1),

with :math:`x_{\max} = \log_2(10^6 + 1)` (a TPM cannot exceed a million), stored as float32.
The responses below are linear in this **stored** :math:`X` (after clipping and the cast to
float32), so least squares of the noise-free responses on the true drivers recovers the planted
coefficients exactly.

*Perturbation types.* Each perturbation is a *common essential* with probability
``frac_common_essential`` (default 0.1 for genes, 0 for drugs) and independently *null* (no
driver: a constant noise-free response) with probability ``frac_null``. Its target mean
:math:`m_p` and signal sd :math:`s_p` depend on ``kind`` (Chronos-like for genes, LN_IC50-like for
drugs):

======================  ===================================  =================================
kind / type             :math:`m_p`                          :math:`s_p`
======================  ===================================  =================================
gene, common essential  :math:`N(-1.3, 0.25^2)`, <= -0.6     :math:`0.05\,\mathrm{LN}(0, 0.3)`
gene, other             :math:`N(-0.1, 0.1^2)`               :math:`0.15\,\mathrm{LN}(0, 0.5)`
drug, broadly toxic     :math:`N(-2, 0.5^2)`                 :math:`0.3\,\mathrm{LN}(0, 0.3)`
drug, other             :math:`N(2.5, 1.5^2)`                :math:`0.8\,\mathrm{LN}(0, 0.4)`
======================  ===================================  =================================

(LN: log-normal.) *Drivers* (non-null perturbations only):
:math:`d_p = \min(1 + \mathrm{Poisson}(\bar d - 1), d_{\max})` driver genes :math:`D_p`
(:math:`\bar d` = ``mean_driver_genes``, :math:`d_{\max}` = ``max_driver_genes``), drawn uniformly
among the expressed genes (:math:`\mu_g > 1`), with raw coefficients
:math:`b_{gp} = \pm U(0.5, 1.5) / \mathrm{sd}_i(X_{ig})`; with probability
``frac_programme_driven`` one (or, with probability 0.3, two) programme drivers with
:math:`c_{kp} = \pm U(0.5, 1.5) / \mathrm{sd}_i(A_{ik})`; with probability
``frac_lineage_specific`` (and :math:`L > 1`) one lineage :math:`l_p` with a lineage-specific
effect :math:`e_{l_p p} = -U(1.5, 3)` (that lineage is more sensitive). The raw signal
:math:`R_{ip} = \sum_{g \in D_p} X_{ig} b_{gp} + \sum_k A_{ik} c_{kp} + e_{l(i)p}` is rescaled to
the target signal sd, :math:`f_p = s_p / \mathrm{sd}_i(R_{ip})`; the planted coefficients are
:math:`\beta_{gp} = f_p b_{gp}`, :math:`\gamma_{kp} = f_p c_{kp}`, :math:`\delta_{lp} = f_p e_{lp}`
and the intercept :math:`\alpha_p = m_p - f_p \,\mathrm{mean}_i(R_{ip})`. Then

.. math:: Y^*_{ip} = \alpha_p + \sum_g X_{ig}\beta_{gp} + \sum_k A_{ik}\gamma_{kp}
          + \delta_{l(i)p}

are the noise-free responses (mean :math:`m_p` and sd :math:`s_p` across samples exactly; a null
perturbation has :math:`Y^*_{ip} = \alpha_p = m_p`), and the observed responses are

.. math:: Y_{ip} = Y^*_{ip} + \tau_p z_{ip}, \quad \tau_p = \text{noise} \cdot s_p,
          \quad z_{ip} \sim N(0, 1),

so that :math:`\mathrm{corr}_i(Y, Y^*) \approx 1 / \sqrt{1 + \text{noise}^2}` for non-null
perturbations.

*Missing values* (NaN). Without blocks (default for genes), each entry is missing independently
with probability :math:`f` = ``frac_missing``. With blocks (default for drugs, screened in
campaigns), the samples are put in a random screening order; perturbation :math:`p` misses a
fraction :math:`q_p \sim \mathrm{Beta}(5 f, 5 (1 - f))` of the samples: a window of
:math:`\mathrm{round}(q_p n)` consecutive samples of that order, starting at a random position
(so perturbations whose windows overlap miss the same samples). Every perturbation keeps at least
one measured sample.

Seeds: the parts of the model draw from independent streams spawned from ``random_state``, so the
same seed gives identical output, and the expression does not depend on ``n_perturbations``.

Layout: one module per step of :func:`simulate_screen` (:mod:`.params`, :mod:`.structure`,
:mod:`.expression`, :mod:`.drivers`, :mod:`.responses`, packaging in :mod:`.screen`), the
planted truth in :mod:`.truth`, writing in :mod:`.writers` and reading back in :mod:`.reader`;
shared constants in :mod:`._constants`.
"""

from leapscreen.data.simulate._constants import SIMULATION_FORMAT_VERSION
from leapscreen.data.simulate.reader import read_simulation_truth
from leapscreen.data.simulate.screen import simulate_screen
from leapscreen.data.simulate.truth import SimulationTruth
from leapscreen.data.simulate.writers import existing_outputs, planned_files, write_simulated

__all__ = [
    "SIMULATION_FORMAT_VERSION",
    "SimulationTruth",
    "existing_outputs",
    "planned_files",
    "read_simulation_truth",
    "simulate_screen",
    "write_simulated",
]
