"""Which metric stands for "quality" for the selector.

The selector learns one quality number per generation, in [0, 1]. The database layer
selects it from the generation's scores with :func:`quality_metric`: the first metric the
experiment recorded that can stand for quality, in the order recorded, which is the order
the user listed them in the spec's ``metrics:`` (else the suite's ``default_metrics``, its
primary first). Descriptive metrics (``output_length``, ``echoes_prompt``) and those where
lower is better (latency, TTFT) are passed over. It used to be fixed per task type
(``exact_match`` for QA): on real QA outputs that was 0 for every config, so the choice
fell to latency alone, whatever the user had asked to be measured.

Metrics on another scale (sacrebleu's BLEU and chrF run 0–100) must be divided by 100
before they reach the selector: :func:`selection.frame.validate_training_frame` rejects
quality outside [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from evaluation.errors import EvalError
from evaluation.metrics import get_metric

if TYPE_CHECKING:
    import pandas as pd


def can_be_quality(name: str) -> bool:
    """A metric with a direction in which higher is better (a user's scorer unknown to
    the registry counts as one)."""
    try:
        metric = get_metric(name)
    except EvalError:
        return True
    return metric.higher_is_better and not metric.descriptive


def quality_metric(task_type: str, available: Sequence[str]) -> str | None:
    """The metric to use as quality given the recorded ``available`` metrics (in the
    user's or the suite's order); None when none of them can stand for quality.
    ``task_type`` is kept for callers: the choice no longer depends on it."""
    return next((name for name in available if can_be_quality(name)), None)


def quality_metrics_used(evidence: pd.DataFrame, task_type: str) -> dict[str, int]:
    """The metrics a selector read quality from on ``task_type`` (its evidence's
    ``quality_metric``, several joined by "+" for a config measured in experiments that
    put different metrics first), each with how many configs, the most used first;
    empty where the evidence does not say (selectors trained before it was kept)."""
    if "quality_metric" not in evidence:
        return {}
    rows = evidence.loc[evidence["task_type"] == task_type, "quality_metric"].astype(str)
    configs: dict[str, int] = {}
    for names in rows:
        for name in filter(None, names.split("+")):
            configs[name] = configs.get(name, 0) + 1
    return dict(sorted(configs.items(), key=lambda item: -item[1]))


def configs_under_several(evidence: pd.DataFrame, task_type: str) -> tuple[int, int]:
    """(How many configs :func:`quality_metrics_used` counts on ``task_type``, how many
    of them it counts under more than one metric: measured in experiments that put
    different metrics first), so that counts summing past the configs say why."""
    if "quality_metric" not in evidence:
        return 0, 0
    rows = evidence.loc[evidence["task_type"] == task_type, ["config_hash", "quality_metric"]]
    names: dict[str, set[str]] = {}
    for config, joined in zip(rows["config_hash"], rows["quality_metric"].astype(str), strict=True):
        names.setdefault(str(config), set()).update(filter(None, joined.split("+")))
    named = [n for n in names.values() if n]
    return len(named), sum(len(n) > 1 for n in named)
