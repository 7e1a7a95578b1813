"""Input checks of the heads: scikit-learn's validation, its errors as leapscreen's ``InputError``.

:class:`CheckedHead` runs :class:`leapscreen.base.BaseHead`'s ``_validate_fit`` /
``_validate_predict`` (scikit-learn's ``validate_data`` / ``check_array`` / ``check_is_fitted``) and
re-raises their ``ValueError`` as :class:`HeadInputError` (an ``InputError``, hence a
``ValueError``) and ``NotFittedError`` as :class:`HeadNotFittedError` (both an ``InputError`` and
a ``NotFittedError``): scikit-learn's message is kept whole, a fix is added, and the CLI shows it
as a clean message. Complex input is refused (scikit-learn's "Complex data not supported").
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from leapscreen.base import BaseHead
from leapscreen.errors import InputError

__all__ = ["CheckedHead", "HeadInputError", "HeadNotFittedError"]


class HeadInputError(InputError):
    """Bad input to a head's ``fit`` or ``predict`` (a ``ValueError``)."""


class HeadNotFittedError(InputError, NotFittedError):
    """``predict`` before ``fit`` (scikit-learn's ``NotFittedError`` too)."""


def _translate(exc: ValueError, fitted: bool) -> HeadInputError:
    """scikit-learn's validation error, with what it means for a head and what to do."""
    text = str(exc)
    if "inconsistent numbers of samples" in text:
        return HeadInputError(text, fix="align the responses to the samples of the representation")
    if "Input Y contains" in text:
        return HeadInputError(
            f"Y contains infinite values ({text})", fix="use NaN for missing responses"
        )
    if "NaN" in text or "infinity" in text:
        return HeadInputError(
            f"Z contains NaN or infinite values ({text})", fix="impute or drop them before fitting"
        )
    if "Expected 2D array" in text:
        return HeadInputError(
            f"Z must be 2-D (samples x features): {text}",
            fix="reshape it to (n_samples, n_features)",
        )
    if fitted and "features" in text:
        return HeadInputError(text, fix="use the same representation as in fit")
    return HeadInputError(
        text, fix="pass Z as numbers (samples x features) and Y as numbers, NaN for missing"
    )


class CheckedHead(BaseHead):
    """A :class:`~leapscreen.base.BaseHead` whose input errors are ``InputError``s."""

    def _validate_fit(self, Z: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        if Y is None:
            raise HeadInputError(
                f"{type(self).__name__} requires y to be passed, but the target y is None",
                fix="pass the responses Y (samples x perturbations, NaN = missing)",
            )
        try:
            return super()._validate_fit(Z, Y)
        except ValueError as exc:
            raise _translate(exc, fitted=False) from exc

    def _validate_predict(self, Z: Any) -> np.ndarray:
        try:
            return super()._validate_predict(Z)
        except NotFittedError as exc:
            raise HeadNotFittedError(
                f"this {type(self).__name__} is not fitted yet", fix="call fit(Z, Y) first"
            ) from exc
        except ValueError as exc:
            raise _translate(exc, fitted=True) from exc
