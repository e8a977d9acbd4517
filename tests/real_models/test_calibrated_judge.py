"""A real model's judgements calibrated to people, end to end: both real models answer
six questions, SmolLM2 judges them through `evalflow judge`, simulated raters (a seeded
rule: right against the reference or not, plus each rater's noise) rate two in three of
the cases the judge graded in a CSV that `evalflow import-ratings` takes, and `evalflow show`
and `evalflow judge-card` give the combined estimates, saying which numbers are which.
The raters are simulated; the outputs and the judge's grades are the real models'."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from evaluation.review.judge import DEFAULT_CRITERIA
from evaluation.review.schema import Judgement
from evaluation.storage.db import make_engine, session_scope
from flows.cli import main
from tests.real_models.conftest import run_sweep, stored, write_spec
from tests.support.real_models import CHAT_MODELS, SMOLLM2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

RATERS = {"ana": 1, "ben": 2}  # rater -> the seed of their noise
N_CASES = 6
# one number, then its interval: "0.412 [0.301, 0.523]"
CELL = re.compile(r"([-+]?\d\.\d{3}) \[([-+]?\d\.\d{3}), ([-+]?\d\.\d{3})\]")
# or why it has none: "0.500 (3 rated cases, all the same: no interval)"
NO_INTERVAL = re.compile(r"[-+]?\d\.\d{3} \(\d+ (?:rated )?cases?(?:, all the same|: too few)")


# Short prompts: the rig's CPU time goes mostly to reading the prompt. Six whose outputs
# SmolLM2 grades (of nine: on three it gave no grade to either model's answer, which cost
# a third of the test's time and left the estimates as they were).
QUESTIONS = {
    "capital": ("What is the capital of France? Answer in one word.", ["Paris"]),
    "legs": ("How many legs does a spider have? Answer with a number.", ["8", "eight"]),
    "planet": ("Which planet is called the Red Planet? One word.", ["Mars"]),
    "colour": ("What colour is the sky on a clear day? One word.", ["blue"]),
    "ice": ("At how many degrees Celsius does water freeze?", ["0", "zero"]),
    "opposite": ("What is the opposite of hot? One word.", ["cold"]),
}


def short_suite(folder: Path) -> Path:
    """Six one-line questions, each its own case (no groups), and their sidecar."""
    rows = [{"id": k, "input": q, "references": r} for k, (q, r) in QUESTIONS.items()]
    path = folder / "six.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sidecar = {"name": "six", "version": "1", "task_type": "qa", "default_metrics": ["contains"]}
    (folder / "six.suite.yaml").write_text(yaml.safe_dump(sidecar))
    return path


def simulated_stars(output: str, references: list[str], rng: np.random.Generator) -> int:
    """A rater's accuracy stars: 5 when a reference is in the output, else 2, moved by
    the rater's noise (−1, 0 or +1 star), on the 1–5 scale."""
    right = any(r.lower() in output.lower() for r in references)
    return int(np.clip((5 if right else 2) + rng.integers(-1, 2), 1, 5))


@pytest.mark.usefixtures("prefect_harness")
def test_a_real_judge_is_calibrated_to_imported_ratings(
    real_server, tmp_path, database_url, capsys
):
    references = {case: refs for case, (_, refs) in QUESTIONS.items()}
    suite = short_suite(tmp_path)
    spec = write_spec(tmp_path, real_server, suite, name="calibrated", grid={"num_predict": [8]})
    rubric = tmp_path / "accuracy.rubric.yaml"  # one criterion: a shorter prompt and answer
    rubric.write_text("accuracy: " + json.dumps(DEFAULT_CRITERIA["accuracy"]) + "\n")
    summary = run_sweep(spec, database_url)
    assert (summary["generated"], summary["failed"]) == (N_CASES * len(CHAT_MODELS), 0)
    judge = ["--database", database_url, "judge", "calibrated", "--url", real_server.url]
    judge += ["--model", SMOLLM2, "--no-pairwise", "--attempts", "1", "--num-predict", "64"]
    judge += ["--rubric", str(rubric)]
    assert main(judge) == 0
    capsys.readouterr()

    generations, _ = stored(database_url, "calibrated")
    with session_scope(make_engine(database_url)) as session:  # unscored grades left out
        query = session.query(Judgement).filter(Judgement.criterion == "accuracy")
        graded = {r.generation_id for r in query if r.stars is not None}
    judged = generations[generations["id"].isin(graded)]
    per_case = judged.groupby("case_id")["config_hash"].nunique()
    both = sorted(per_case[per_case == len(CHAT_MODELS)].index)
    assert len(both) >= 3, f"the judge graded both configs' outputs of {len(both)} cases"
    # the rated cases are a random draw of the judged ones (what the estimate asks), two
    # in three of them: the rest are what the judge alone adds
    n_rated = len(both) - len(both) // 3
    rated_cases = set(np.random.default_rng(0).choice(both, n_rated, replace=False))
    rated = generations[generations["case_id"].isin(rated_cases)]
    path = tmp_path / "ratings.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["case", "config", "rater", "criterion", "stars"])
        for rater, seed in RATERS.items():
            rng = np.random.default_rng(seed)
            for g in rated.itertuples():
                stars = simulated_stars(g.output, references[g.case_id], rng)
                out.writerow([g.case_id, g.config_hash, rater, "accuracy", stars])
    assert main(["--database", database_url, "import-ratings", "calibrated", str(path)]) == 0
    imported = capsys.readouterr().out
    assert imported.startswith(f"{len(RATERS) * len(rated)} ratings of calibrated by ana, ben")

    assert main(["--database", database_url, "show", "calibrated"]) == 0
    shown = capsys.readouterr().out
    judge_name = f"openai:{SMOLLM2}"
    heading = (
        f"judge_accuracy, combined: judge {judge_name} on {len(graded)} outputs calibrated "
        f"to people's ratings of {len(rated)} (PPI++) — NOT presented as calibrated: "
        f"{len(rated)} rated outputs, at least 30 needed (`evalflow judge-card` says why); "
        "95% intervals, unit scale (stars − 1)/4:"
    )
    assert heading in shown, shown
    board, calibrated = shown.split(heading)
    # the leaderboard has no judge column: the judge's mean is the block's judge only
    assert "judge_" not in board
    block = [heading, *calibrated.strip("\n").splitlines()]
    assert block[1].split()[1:] == ["judge", "only", "people", "only", "(n)", "combined", "(λ)"]
    models = set()
    for row in block[2 : 2 + len(CHAT_MODELS)]:
        models |= {m for m in CHAT_MODELS if m in row}
        cells = [tuple(map(float, c)) for c in CELL.findall(row)]
        # judge only, people only, combined: each with its interval cut to [0, 1], or
        # why it has none (every rated case the same)
        assert len(cells) + len(NO_INTERVAL.findall(row)) == 3, row
        for estimate, low, high in cells:
            assert 0 <= low <= estimate <= high <= 1, row
        people_n = re.split(r"[\])] ", row)[2].split()[0]  # after the people's figure: their n
        assert int(people_n) == len(rated_cases) and "λ=" in row, row
    assert models == set(CHAT_MODELS)
    assert block[2 + len(CHAT_MODELS)].startswith("  differences, combined, Holm over 1 pair(s)")
    difference = block[3 + len(CHAT_MODELS)]
    assert f" on {len(rated_cases)} rated cases" in difference and "(judge only " in difference
    cells = CELL.findall(difference)
    assert len(cells) + len(NO_INTERVAL.findall(difference)) == 2, difference
    for estimate, low, high in (map(float, c) for c in cells):  # combined, then judge only
        assert -1 <= low <= estimate <= high <= 1, difference
    print("\n".join(block))  # the figures, for the record (pytest -rP shows them)

    assert main(["--database", database_url, "judge-card", "calibrated"]) == 0
    card = capsys.readouterr().out
    assert f"accuracy: NOT calibrated: {len(rated)} outputs people also rated" in card, card
    agreement = next(line for line in card.splitlines() if "Spearman rho" in line)
    assert agreement.strip().startswith("accuracy") and f"; n {len(rated)}" in agreement, card
    assert "the judge's model is not a model of this sweep" not in card  # SmolLM2 is one
    print(card)
