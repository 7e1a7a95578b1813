"""The scikit-learn estimator checks each estimator is expected to fail, in one place, with why.

``parametrize_with_checks(..., expected_failed_checks=expected_failures)`` reads this table. Every
entry says why the check does not apply; a check that starts passing makes the test fail
(``xfail_strict``), so the list stays honest.
"""

from __future__ import annotations

# class name -> {check name: reason}
_NAN_TARGETS = (
    "NaN in y means 'not measured' by design: every head fits each perturbation on its labelled "
    "rows only, so NaN targets are accepted (infinite ones are still refused, with an InputError)"
)
_N_ITER = (
    "max_iter bounds only the coordinate-descent fallback that finishes the rare fold problems the "
    "active-set path solver does not settle; the path solver has no single iteration count "
    "(solver_stats_ reports its work), so there is no n_iter_"
)
HEADS: dict[str, dict[str, str]] = {
    "PSLassoHead": {
        "check_supervised_y_no_nan": _NAN_TARGETS,
        "check_non_transformer_estimators_n_iter": _N_ITER,
    },
    "ElasticNetHead": {
        "check_supervised_y_no_nan": _NAN_TARGETS,
        "check_non_transformer_estimators_n_iter": _N_ITER,
    },
    "RidgeHead": {"check_supervised_y_no_nan": _NAN_TARGETS},
    # MeanHead's R^2 of 0 is declared with the poor_score tag, so check_regressors_train passes
    "MeanHead": {"check_supervised_y_no_nan": _NAN_TARGETS},
    "PSMLPHead": {"check_supervised_y_no_nan": _NAN_TARGETS},
    "ReducedRankRidgeHead": {"check_supervised_y_no_nan": _NAN_TARGETS},
    "StackedHead": {"check_supervised_y_no_nan": _NAN_TARGETS},
    "PSKNNHead": {"check_supervised_y_no_nan": _NAN_TARGETS},
    "PSLightGBMHead": {"check_supervised_y_no_nan": _NAN_TARGETS},
    "NormalScoresHead": {"check_supervised_y_no_nan": _NAN_TARGETS},
}

# Every representation passes every check (tests/represent/test_sklearn_contract.py): the one
# deliberate departure, float32 output whatever the input dtype (the networks' dtype, and what
# LEAP's heads receive), is declared with the tag transformer_tags.preserves_dtype = [] rather
# than listed here, so check_transformer_preserve_dtypes does not apply.
REPRESENTATIONS: dict[str, dict[str, str]] = {}


def expected_failures(estimator) -> dict[str, str]:  # noqa: ANN001 - any estimator
    """The expected failures of one estimator (for ``expected_failed_checks``)."""
    name = type(estimator).__name__
    return {**HEADS.get(name, {}), **REPRESENTATIONS.get(name, {})}
