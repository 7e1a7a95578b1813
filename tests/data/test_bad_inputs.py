"""Every bad or unusual input of the catalogue (``bad_inputs.py``) loads right or fails cleanly.

A clean failure is a :class:`~leapscreen.errors.LeapscreenError` that names the file given
through the right argument, says what is wrong and does not point at a wrong cause.
"""

from __future__ import annotations

import pytest

from leapscreen.data import loading
from tests.data.bad_inputs import CASES, run_case


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_loads_right_or_fails_cleanly(case, tmp_path):
    outcome, detail = run_case(case, tmp_path, loading)
    expected = "correct" if case.expect == "ok" else "clean"
    assert outcome == expected, f"{case.name}: {outcome} ({detail})"
