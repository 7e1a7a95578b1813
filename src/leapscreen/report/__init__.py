"""Reports of evaluation results: figures and one self-contained HTML file."""

from leapscreen.report.figures import (
    model_colors,
    plot_lineage_scores,
    plot_model_scatter,
    plot_score_distribution,
)
from leapscreen.report.html import figure_to_data_uri, render_html_report, write_html_report

__all__ = [
    "figure_to_data_uri",
    "model_colors",
    "plot_lineage_scores",
    "plot_model_scatter",
    "plot_score_distribution",
    "render_html_report",
    "write_html_report",
]
