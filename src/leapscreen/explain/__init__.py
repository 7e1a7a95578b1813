"""Why, and how sure: distillation, calibrated stability selection, pathway enrichment,
prediction intervals and the applicability domain.

Import from the modules: :mod:`~leapscreen.explain.distill`, :mod:`~leapscreen.explain.stability`,
:mod:`~leapscreen.explain.pathways`, :mod:`~leapscreen.explain.intervals`,
:mod:`~leapscreen.explain.domain`. Functions here take arrays and return arrays or tables; they
read and write no files.
"""
