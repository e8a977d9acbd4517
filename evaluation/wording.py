"""Words shared by every output: counts as people read them ("1 sample", "2 samples"),
what a latency that was not measured reads as, a mean of first cases, and the width text
is laid out to where the terminal's is not known."""

from __future__ import annotations

TERMINAL_COLUMNS = 100
"""The width terminal text (a leaderboard, a comparison, the doctor's report) fits where
the terminal's own width is not known (output to a file or a pipe), unless asked wider."""

NOT_MEASURED = "not measured"
"""A latency no clock covered (stored as None; ``evaluation.run._pipelines``): shown as
these words, never as a number or a dash that could pass for one."""


NOT_A_SAMPLE = "not a sample: the interval is a random subset's, no full-suite interval"
"""Said of a mean of a suite's first cases (a smoke or ``--limit`` run;
``evaluation.itembank``): its interval, a random subset's, does not cover the suite."""


ESTIMATED_FROM = "estimated from"
"""How a full-suite score an item bank estimated reads (``evaluation.itembank``): a
heading says "Full-suite" only over such rows, not over subset means alone."""


ON_THE_DISPLAY = "on_the_display"
"""A log record's attribute (``extra={ON_THE_DISPLAY: True}``): what it says `run`'s
terminal display counts and its summary repeats (generations never answered), so the
terminal does not get it while the display is drawn (``flows.cli.logs``): a 241-column
warning wrapped over four rows above the live line."""


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one ("1 sample", "0 samples", "3 configs")."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def failed_words(failed: int, never_answered: int) -> str:
    """ "5 failed", with how many of them no host answered ("5 failed (5 never answered:
    no host serving their model was up)"): the log said "could not run" of
    what the summary and the leaderboard count as failed, and a reader took it for the
    model's failure."""
    if not never_answered:
        return f"{failed} failed"
    return f"{failed} failed ({never_answered} never answered: no host serving their model was up)"
