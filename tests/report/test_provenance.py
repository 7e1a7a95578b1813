"""The report's "How this was made" section: the caller's provenance and the data fingerprint."""

from __future__ import annotations

import re

import pandas as pd

from leapscreen.report import write_html_report

PER_PERT = pd.DataFrame(
    {
        "model": ["mean", "mean", "ridge", "ridge"],
        "split": ["repeat-00"] * 4,
        "perturbation": ["A", "B", "A", "B"],
        "spearman": [0.0, 0.0, 0.4, 0.5],
        "mse": [1.0, 1.0, 0.8, 0.7],
        "n_test": [10] * 4,
    }
)
RESULTS = pd.DataFrame(
    {"model": ["mean", "ridge"], "spearman_mean": [0.0, 0.45], "spearman_sd": [0.0, 0.0]}
)


def _section(text: str) -> str:
    match = re.search(r"<h2>How this was made</h2>(.*?)(<h2>|<footer>)", text, re.S)
    assert match, "no 'How this was made' section"
    return match.group(1)


def test_provenance_section(tmp_path):
    settings = {
        "task": "unseen-cell-lines",
        "transductive": False,
        "data_fingerprint": "sha256:0123456789abcdef",
        "provenance": {
            "inputs": {
                "expression": {"path": "expr <1>.csv", "sha256": "f" * 64},
                "list": [
                    {"option": "--responses", "path": "resp.csv", "sha256": "e" * 64},
                    {
                        "option": "--data",
                        "path": "dir",
                        "files": [{"name": "a.parquet", "sha256": "d" * 64}],
                    },
                ],
            },
            "value": "LN_IC50",
            "command": ["leapscreen", "evaluate", "--out", "my dir"],
            "version": "9.9.9",
        },
    }
    path = write_html_report(tmp_path / "r.html", "t", RESULTS, PER_PERT, {}, settings)
    text = path.read_text(encoding="utf-8")
    section = _section(text)
    for needle in (
        "sha256:0123456789abcdef",
        "f" * 64,
        "e" * 64,
        "expr &lt;1&gt;.csv",  # escaped, never raw HTML
        "LN_IC50",
        "leapscreen evaluate --out &#x27;my dir&#x27;",  # the command line as a shell would take it
        "9.9.9",
        "inputs / expression",
        "inputs / list / --responses",
        "path: dir, files: name: a.parquet, sha256: " + "d" * 64,
    ):
        assert needle in section, needle
    assert "expr <1>.csv" not in text
    # shown once, in its own section, not repeated in the settings table
    assert text.count("f" * 64) == 1 and text.count("sha256:0123456789abcdef") == 1


def test_no_section_without_provenance(tmp_path):
    path = write_html_report(tmp_path / "r.html", "t", RESULTS, PER_PERT, {}, {"task": "kfold"})
    assert "How this was made" not in path.read_text(encoding="utf-8")
    # a fingerprint alone is still shown
    path = write_html_report(
        tmp_path / "r2.html", "t", RESULTS, PER_PERT, {}, {"data_fingerprint": "sha256:ab"}
    )
    assert "sha256:ab" in _section(path.read_text(encoding="utf-8"))
