"""The picks of the selector as it was at an older commit, for ``selector_benchmark.py``.

Run as a script in its own process with ``PYTHONPATH`` set to that commit's ``selection``
and ``evaluation`` packages (:func:`picks_at` extracts them with ``git archive``), so the
old code answers the very data and queries the present one does:

    python _selector_at.py IN.pkl OUT.json

IN.pkl holds ``{"frame": per-generation rows, "queries": [{task_type, max_latency_s,
max_energy_j, input_chars}, ...]}``; OUT.json gets the picked config hash per query
(None where it offered none).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

REPOSITORY = Path(__file__).resolve().parents[2]


def picks_at(
    commit: str, frame: pd.DataFrame, asked: list[dict], cache: Path, key: str
) -> list[str | None]:
    """The picks of ``commit``'s selector trained on ``frame`` for the queries ``asked``;
    kept in ``cache`` under ``key`` (the old code never changes, so neither do they)."""
    stored = cache / f"{commit}-{key}.json"
    if stored.exists():
        return json.loads(stored.read_text())
    tree = cache / f"tree-{commit}"
    if not (tree / "selection").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPOSITORY), "archive", commit, "selection", "evaluation"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    with tempfile.TemporaryDirectory() as work:
        given, out = Path(work) / "in.pkl", Path(work) / "out.json"
        pd.to_pickle({"frame": frame, "queries": asked}, given)
        env = os.environ | {"PYTHONPATH": str(tree)}
        subprocess.run(
            [sys.executable, __file__, str(given), str(out)], check=True, env=env, cwd=work
        )
        found = json.loads(out.read_text())
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_text(json.dumps(found))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description="The picks of the selector at an older commit: run by picks_at with "
        "PYTHONPATH set to that commit's selection and evaluation packages."
    )
    parser.add_argument("given", type=Path, help="IN.pkl: the frame and the queries")
    parser.add_argument("out", type=Path, help="OUT.json: the picked config hash per query")
    args = parser.parse_args()
    from selection.frame import validate_training_frame
    from selection.recommender import recommend_from_model
    from selection.training import train_selector

    given = pd.read_pickle(args.given)
    model = train_selector(validate_training_frame(given["frame"])).model
    picks = []
    for query in given["queries"]:
        answer = recommend_from_model(
            model,
            query["task_type"],
            max_latency_s=query["max_latency_s"],
            max_energy_j=query["max_energy_j"],
            input_chars=query["input_chars"],
        )
        picks.append(answer.choice.config_hash if answer.choice is not None else None)
    args.out.write_text(json.dumps(picks))


if __name__ == "__main__":
    main()
