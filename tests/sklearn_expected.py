"""The scikit-learn estimator checks each estimator is expected to fail, in one place, with why.

``parametrize_with_checks(..., expected_failed_checks=expected_failures)`` reads this table. Every
entry says why the check does not apply; a check that starts passing makes the test fail
(``xfail_strict``), so the list stays honest.
"""

from __future__ import annotations

# class name -> {check name: reason}
HEADS: dict[str, dict[str, str]] = {}

REPRESENTATIONS: dict[str, dict[str, str]] = {}


def expected_failures(estimator) -> dict[str, str]:  # noqa: ANN001 - any estimator
    """The expected failures of one estimator (for ``expected_failed_checks``)."""
    name = type(estimator).__name__
    return {**HEADS.get(name, {}), **REPRESENTATIONS.get(name, {})}
