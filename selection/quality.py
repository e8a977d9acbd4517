"""Which metric stands for "quality" for each task type.

The selector learns one quality number per generation, in [0, 1]. The database layer
selects it from the generation's scores with :func:`quality_metric`:

=================  ==========================================================
task type          quality metric
=================  ==========================================================
qa                 ``exact_match``
summarization      ``rougeL``
classification     ``accuracy``
generation, code   the first metric the experiment recorded (suite order)
anything else      the first metric the experiment recorded
=================  ==========================================================

When the mapped metric was not recorded, the first recorded one is used as well, so a
suite that scores QA by ``f1`` alone still trains the selector. Metrics on another scale
(sacrebleu's BLEU and chrF run 0–100) must be divided by 100 before they reach the
selector: :func:`selection.frame.validate_training_frame` rejects quality outside [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

QUALITY_METRICS: dict[str, str] = {
    "qa": "exact_match",
    "summarization": "rougeL",
    "classification": "accuracy",
}


def quality_metric(task_type: str, available: Sequence[str]) -> str | None:
    """The metric to use as quality for ``task_type`` given the recorded ``available``
    metrics (in the suite's order); None when nothing was recorded."""
    preferred = QUALITY_METRICS.get(task_type)
    if preferred is not None and preferred in available:
        return preferred
    return available[0] if available else None
