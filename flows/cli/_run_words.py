"""What `run` says: its first line (the work to run), its display's details, and at its
end the verdicts, empty outputs, scorers that failed, a failed smoke level and where to
look next."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from evaluation.wording import counted
from flows.cli._database import follow_up
from flows.cli._width import fitted, fitted_command

if TYPE_CHECKING:
    from evaluation.adaptive import SmokeFailed
    from evaluation.compare import Leaderboard


def starting_line(
    sweep,
    name: str,
    local_server: bool,
    *,
    level: str = "full",
    limit: int | None = None,
    count: int | None = None,
    stored: int = 0,
) -> str:
    """What `run` says as soon as the spec and hosts are checked: the work that will run
    (the cases of ``level``, the first ``limit`` of them; ``stored`` of its generations
    already are, from an earlier run of the experiment) and what starts now (a local
    Prefect server takes 2–3 s before the first generation, 20–45 s at load 5–7 with
    the command's own start),
    in one line of a 120-column terminal for names of up to 18 characters (the display's
    next line says which Prefect)."""
    from evaluation.adaptive import level_cases

    spec = sweep.spec
    every = sweep.suite.cases
    if count is None:
        count = len(level_cases(sweep.cases, level, suite=sweep.suite.name, limit=limit))
    cases = count  # the calibrated level's count comes from its bank
    shown = counted(cases, "case") + (f" of {len(every)}" if cases < len(every) else "")
    total = len(sweep.configs) * cases * spec.samples_per_case
    server = "; starting Prefect" if local_server else ""
    done = f", {stored} already stored" if stored else ""
    return (
        f"{name}: {counted(total - stored, 'generation')} to run{done} "
        f"({counted(len(sweep.configs), 'config')} × {shown}"
        f" × {counted(spec.samples_per_case, 'sample')}){server}…"
    )


def spec_words(sweep) -> str:
    """The preparing line's detail: what the spec and suite came to."""
    return f"{counted(len(sweep.configs), 'config')}, suite {sweep.suite.name}"


def hosts_words(sweep) -> str:
    """The checking-hosts line's detail: every host, by name."""
    hosts = sweep.spec.hosts
    names = ", ".join(h.name for h in hosts[:4]) + (
        f" and {len(hosts) - 4} more" if len(hosts) > 4 else ""
    )
    return f"{names}: reachable, models there"


def verdict_lines(comparison: dict) -> list[str]:
    """The comparison's verdict per metric, as the log said it, wrapped at the terminal's
    width between words."""
    import textwrap

    from flows.cli._width import terminal_columns

    width = terminal_columns()
    return [
        textwrap.fill(v["verdict"], width, subsequent_indent="  ", break_on_hyphens=False)
        for v in comparison.values()
        if v.get("verdict")
    ]


def empty_outputs(board: Leaderboard) -> str:
    """ "5 outputs are empty, in 1 of 2 configs: ..." where the model returned nothing
    ("" from Gemma-3-270M on every case, counted a success); "" where none is."""
    counts = [int(r["empty_outputs"] or 0) for r in board.rows]
    if not any(counts):
        return ""
    return (
        f"{counted(sum(counts), 'output')} empty, in {sum(c > 0 for c in counts)} of "
        f"{counted(len(counts), 'config')}: scored as empty answers, not as failures"
    )


def unscored_metrics(board: Leaderboard) -> str:
    """ "metric mypkg.checks:boom has no score on some generations: its scorer raised"
    where a metric's scorer raised or could not score (the ``NOT SCORED`` lines under the
    table say how many and why); "" where none did."""
    from evaluation.compare._leaderboard import UNSCORED_FLAG

    flagged = [n for n in board.notes if n.startswith(f"{UNSCORED_FLAG}: ")]
    named = (n.removeprefix(f"{UNSCORED_FLAG}: ").split()[0] for n in flagged)
    names = list(dict.fromkeys(name.removesuffix("'s") for name in named))  # "m's corpus..."
    if not names:
        return ""
    which = f"metric {names[0]} has" if len(names) == 1 else f"metrics {', '.join(names)} have"
    return f"{which} no score on some generations: a scorer failed ({UNSCORED_FLAG} above)"


def smoke_lines(failure: SmokeFailed, resume: str) -> str:
    """A failed smoke level as `run` ends it: how many failed, a line per host and cause
    (not per config: one host killed was 1,250 characters on one line), the resume
    command; fitted to the width where it is known."""
    again = (
        f"once that is fixed (a host that went down restarted), resume with: {resume} "
        f"(it does only the {failure.failed} failed)"
    )
    lines = ["error: " + failure.lines()[0], *failure.lines()[1:]]
    return fitted("\n".join(lines)) + "\n" + fitted_command(again, resume)


def next_steps(
    experiment: str,
    report: str,
    argv: Sequence[str] = (),
    width: int | None = None,
    *,
    pairs: bool = True,
) -> str:
    """Where to look after a run: the viewer, the report file, the paired comparisons
    where there are ``pairs`` (two configs with outputs: after a run whose every
    generation failed, `compare` has nothing to compare); the commands with the
    ``--database`` of the run's command line ``argv``. Each where its words line up,
    unless a line is wider than ``width`` (a URL or a path cannot wrap: at 80 columns the
    URL's line was 89, the report's path's over 90): then each under its words."""
    from evaluation.view.links import summary_url

    steps = [
        ("every output, in the browser:", follow_up(["view", experiment], argv)),
        ("", f"then open {summary_url(experiment)}"),
        ("the report:", report),
    ]
    if pairs:
        steps.append(("every pair compared:", follow_up(["compare", experiment], argv)))
    lined_up = [f"  {words:<31}{where}" for words, where in steps]
    if width is None or max(map(len, lined_up)) <= width:
        return "\n".join(["", "Next:", *lined_up])
    stacked = [
        line for words, where in steps for line in (f"  {words}", f"    {where}") if line.strip()
    ]
    return "\n".join(["", "Next:", *stacked])
