import subprocess
import sys

import selection


def test_public_names():
    assert selection.__all__ == [
        "Recommendation",
        "TrainingDataError",
        "UnknownRecommendation",
        "format_recommendation",
        "quality_metric",
        "recommend",
        "record_outcome",
        "render_report",
        "train_and_maybe_promote",
        "train_selector",
        "validate_training_frame",
    ]
    for name in selection.__all__:
        assert getattr(selection, name) is not None
    assert callable(selection.recommend)


def test_importing_the_tables_stays_cheap():
    code = (
        "import sys, selection.schema; "
        "print(sorted(m for m in ('pandas', 'sklearn', 'prefect') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
