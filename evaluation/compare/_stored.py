"""Comparisons stored and read back. A comparison is stored as its pairs (``comparisons``
rows) and its record (``comparison_runs``: the digest of its inputs, the verdicts, the
markdown). ``current_comparison`` reads the stored one while the digest of today's inputs
still matches it, and computes (scipy.stats, statsmodels: seconds to import) and stores
it only when not: `evalflow compare` right after a sweep reads what the sweep's compare
stage stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlmodel import Session

from evaluation.compare._inputs import ComparisonInputs, selection_inputs
from evaluation.compare._text import verdicts_by_metric
from evaluation.statistics._adjust import Adjustment, adjust_p_values
from evaluation.storage.comparisons import comparison_run, comparisons_frame, replace_comparisons

if TYPE_CHECKING:
    from evaluation.compare._comparison import ComparisonOutcome

# stored column → the comparison table's column (``table_rows(report)["comparisons"]``)
_COLUMNS = {
    "metric": "metric",
    "config_a": "a",
    "config_b": "b",
    "n_used": "n_used",
    "n_excluded": "n_excluded",
    "diff": "diff",
    "ci_low": "diff_ci_low",
    "ci_high": "diff_ci_high",
    "test": "test",
    "p_value": "p_value",
    "p_adjusted": "p_adjusted",
    "effect_size": "effect_size",
    "effect_size_name": "effect_size_name",
    "min_detectable_diff": "min_detectable_difference",
    "note": "note",
}


@dataclass(frozen=True)
class CurrentComparison:
    """What `evalflow compare` prints: ``rows`` are the comparison table's rows (the
    columns of ``_COLUMNS`` and ``significant``); ``computed`` says whether it was computed
    now (else read back)."""

    run_label: str
    simulated: bool
    rows: list[dict[str, Any]]
    verdicts: dict[str, dict[str, Any]]
    markdown: str
    computed: bool


def save_comparison(session: Session, outcome: ComparisonOutcome) -> int:
    """Store ``outcome``'s rows and record under its run label, replacing the previous
    ones. Returns the number of rows stored."""
    return replace_comparisons(session, outcome.run_label, outcome.rows, outcome.record())


def current_comparison(
    session: Session,
    selections: Sequence[tuple[str, str | None]],
    *,
    baseline: str | None = None,
    adjust: Adjustment = "holm",
) -> CurrentComparison:
    """The comparison the `compare` verb asks for (see ``selection_inputs``): read back
    while its stored digest matches, else computed and stored."""
    inputs = selection_inputs(session, selections, baseline=baseline, adjust=adjust)
    stored = read_comparison(session, inputs, adjust=adjust)
    if stored is not None:
        return stored
    from evaluation.compare._comparison import compare_inputs

    outcome = compare_inputs(inputs, adjust=adjust)
    save_comparison(session, outcome)
    return CurrentComparison(
        run_label=outcome.run_label,
        simulated=outcome.simulated,
        rows=outcome.tables["comparisons"],
        verdicts=outcome.verdicts(),
        markdown=outcome.markdown,
        computed=True,
    )


def read_comparison(
    session: Session,
    inputs: ComparisonInputs,
    *,
    adjust: Adjustment = "holm",
    alpha: float = 0.05,
    delta: float | None = None,
) -> CurrentComparison | None:
    """The stored comparison of ``inputs``, or None when none is stored or it was
    computed from other inputs. Significance is not stored: each metric's family of
    stored p-values is adjusted again as it was, and a stored adjusted p-value that
    this does not reproduce makes the stored comparison stale too."""
    run = comparison_run(session, inputs.run_label)
    if run is None or run.inputs_digest != inputs.digest(adjust=adjust, alpha=alpha, delta=delta):
        return None
    frame = comparisons_frame(session, inputs.run_label)[list(_COLUMNS)].rename(columns=_COLUMNS)
    rows = [{k: _value(v) for k, v in row.items()} for row in frame.to_dict("records")]
    for metric in dict.fromkeys(r["metric"] for r in rows):
        family = [r for r in rows if r["metric"] == metric]
        adjusted, reject = adjust_p_values([r["p_value"] for r in family], run.alpha, adjust)
        if adjusted != [r["p_adjusted"] for r in family]:
            return None
        for row, significant in zip(family, reject, strict=True):
            row["significant"] = significant
    return CurrentComparison(
        run_label=run.run_label,
        simulated=run.simulated,
        rows=rows,
        verdicts=verdicts_by_metric(run.verdicts),
        markdown=run.markdown,
        computed=False,
    )


def _value(value: Any) -> Any:
    """A stored cell as the comparison table has it: NULL as None, numbers as Python's."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value
