"""The simulator's steps, run one by one, give exactly what ``simulate_screen`` gives."""

from __future__ import annotations

import numpy as np

from leapscreen.data.simulate import simulate_screen
from leapscreen.data.simulate.drivers import draw_drivers, perturbation_types
from leapscreen.data.simulate.expression import gene_parameters, simulate_expression
from leapscreen.data.simulate.params import check_params
from leapscreen.data.simulate.responses import (
    missing_mask,
    planted_coefficients,
    simulate_responses,
)
from leapscreen.data.simulate.structure import assign_lineages, draw_programmes


def test_steps_compose_to_simulate_screen():
    kw = dict(n_samples=70, n_genes=50, n_perturbations=20, n_lineages=4, n_programmes=3)
    data, truth = simulate_screen(**kw, kind="drug", frac_missing=0.2, random_state=9)
    p = check_params(
        kw["n_samples"], kw["n_genes"], kw["n_perturbations"], kw["n_lineages"], 3, 0.2, "drug",
        1.0, 9, None, 0.1, 0.5, 0.2, 1.5, 5, None, None, 1.0, "simulated",
    )  # fmt: skip
    assert p == truth.params and p["block_missing"] and p["frac_common_essential"] == 0.0
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(9).spawn(7)]
    lineage = assign_lineages(rngs[0], 70, 4)
    activity, loadings = draw_programmes(rngs[1], lineage, 4, 3, 50, p["module_size"], 1.0)
    mu, sigma, lam = gene_parameters(rngs[2], 50, 4, 1.0)
    X = simulate_expression(rngs[3], lineage, activity, loadings, mu, sigma, lam)
    np.testing.assert_array_equal(X, data.expression.to_numpy())
    np.testing.assert_array_equal(activity, truth.programme_activity.to_numpy())
    types = perturbation_types(rngs[4], 20, "drug", 0.0, 0.1)
    drivers = draw_drivers(rngs[4], X, mu, activity, types.null, 4, p)
    mask = missing_mask(rngs[6], 70, 20, 0.2, True)
    resp = simulate_responses(rngs[5], X, activity, lineage, drivers, types, 1.0, mask)
    np.testing.assert_array_equal(resp.observed, data.responses.to_numpy())
    np.testing.assert_array_equal(np.isnan(resp.observed), mask)
    assert (~mask).any(axis=0).all()  # every perturbation keeps a measured sample
    coef, gamma, delta = planted_coefficients(drivers, resp.scale)
    np.testing.assert_array_equal(coef.toarray(), truth.coef.toarray())
    np.testing.assert_array_equal(gamma, truth.programme_coef.to_numpy())
    np.testing.assert_array_equal(delta, truth.lineage_coef.to_numpy())
    # the noise-free responses are linear in the stored expression with the planted coefficients
    y_star = resp.intercept + X.astype(np.float64) @ coef.toarray() + activity @ gamma
    y_star = y_star + delta[lineage]
    np.testing.assert_allclose(y_star, resp.noise_free, rtol=1e-4, atol=1e-4)
