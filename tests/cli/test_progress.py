"""The CLI's progress bar also listens to the heads' per-perturbation progress."""

from __future__ import annotations

import io

from rich.console import Console

from leapscreen.cli import _common
from leapscreen.heads._parallel import get_progress_callback, report_progress


def test_progress_bar_listens_to_the_heads(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(
        _common, "err_console", Console(file=buffer, force_terminal=False, width=100)
    )
    assert get_progress_callback() is None
    with _common.progress_bar(False, "fit", 2) as advance:
        assert get_progress_callback() is not None
        report_progress("ps-lightgbm", 3, 7)
        advance("member 1", 1, 2)
    assert get_progress_callback() is None  # only inside the bar
    assert "perturbations" in buffer.getvalue() and "3/7" in buffer.getvalue()
    with _common.progress_bar(True, "fit", 2):
        assert get_progress_callback() is None  # --quiet: nobody listens
