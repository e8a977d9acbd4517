"""The `evalflow` command line: where settings are read and flows are started. Each verb
group is a module with a ``register(sub)``; add a new group to ``VERB_GROUPS``."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn, TextIO

from evaluation.errors import EvalError, InputWarning, ReadNote, TryLater
from evaluation.metrics._stored import forget_declarations
from evaluation.printable import printable
from evaluation.redact import gives_a_key, one_line, redact, redact_argv, urls_given
from flows.cli import (
    calibration,
    itembank,
    metrics,
    ops,
    options,
    plan,
    rescore,
    results,
    review,
    run,
    selection,
    stats,
    trends,
    view,
)
from flows.cli._signals import exit_code, ignored_sigint_taken, release_held, say_stopped
from flows.cli._verbose import print_masked_traceback
from flows.loopback import bypass_proxies_for_loopback

VERB_GROUPS = (
    plan,
    run,
    rescore,
    results,
    stats,
    trends,
    itembank,
    ops,
    metrics,
    review,
    calibration,
    selection,
    view,
)

EXIT_FAILED = 1  # the command failed (a run with failed generations, an unhealthy host ...)
EXIT_BAD_INPUT = 2  # refused: an option, a file, a setting the user gave
EXIT_TRY_LATER = 75  # refused: a host is busy, not down (sysexits.h EX_TEMPFAIL)

#: What `evalflow --help` says it is, in a user's words (wrapped to ``HELP_WIDTH``).
DESCRIPTION = (
    "Find the best local model and settings for a task: run a sweep of models and "
    "parameters over a benchmark suite, score every output, compare the configurations "
    "with paired statistics, browse the outputs, and get a recommendation under your "
    "latency and energy limits. Start with the bundled demo (no GPU, no model server)."
)

#: The width `evalflow --help`'s own text is wrapped to: it fits 80 columns.
HELP_WIDTH = 79


#: One example per verb, shown at the end of its --help.
EXAMPLES = {
    "plan": "evalflow plan benchmarks/sweeps/demo-simulated.yaml",
    "run": "evalflow run benchmarks/sweeps/demo-simulated.yaml --level smoke",
    "rescore": "evalflow rescore demo-simulated --metrics exact_match,contains",
    "experiments": "evalflow experiments",
    "show": "evalflow show demo-simulated",
    "export": "evalflow export demo-simulated --format parquet --level scores --out results/",
    "compare": "evalflow compare demo-simulated --all",
    "series": "evalflow series",
    "trends": "evalflow trends demo-simulated",
    "bank": "evalflow bank qa-short",
    "gate": "evalflow gate pr-candidate --baseline pr-baseline --junit gate.xml",
    "power": "evalflow power benchmarks/sweeps/demo-simulated.yaml --delta 0.05",
    "doctor": "evalflow doctor benchmarks/sweeps/ollama-example.yaml",
    "health": "evalflow health benchmarks/sweeps/ollama-example.yaml --timeout 2",
    "serve": "evalflow serve --nightly-cron '0 3 * * *'",
    "metrics": "evalflow metrics --health-spec benchmarks/sweeps/demo-simulated.yaml",
    "deploy": "evalflow deploy --pool evalflow --source /srv/evalflow",
    "baseline": "evalflow baseline accept nightly-2026-01-31",
    "review": "evalflow review demo-simulated --rater ana --pairs 20",
    "report": "evalflow report demo-simulated --out demo.html",
    "judge": "evalflow judge demo-simulated --model qwen2.5:7b --limit 20",
    "import-ratings": "evalflow import-ratings demo-simulated benchmarks/ratings/demo.csv",
    "judge-card": "evalflow judge-card demo-simulated --judge ollama:qwen2.5:7b",
    "rate-next": "evalflow rate-next demo-simulated",
    "recommend": "evalflow recommend qa --max-latency 2 --prefer quality",
    "retrain": "evalflow retrain --include-simulated",
    "view": "evalflow view demo-simulated",
    "monitor": "evalflow monitor --port 8766",
    "status": "evalflow status demo-simulated",
}


#: `evalflow --help` lists the verbs by task, in this order; a verb no group names is
#: listed last, under "more".
HELP_GROUPS = {
    "run and plan": ("plan", "run", "rescore", "power", "bank"),
    "look at results": (
        "experiments",
        "show",
        "view",
        "compare",
        "report",
        "export",
        "series",
        "trends",
        "monitor",
    ),
    "people and judges": ("review", "judge", "import-ratings", "judge-card", "rate-next"),
    "choosing a config": ("recommend", "retrain"),
    "operations": ("doctor", "health", "status", "serve", "deploy", "baseline", "gate", "metrics"),
}


def command_list(sub: argparse._SubParsersAction, width: int = HELP_WIDTH) -> str:
    """The verbs of ``sub`` with their one-line help, grouped as ``HELP_GROUPS`` says."""
    helps = {action.dest: action.help or "" for action in sub._choices_actions}
    grouped = {title: [v for v in verbs if v in helps] for title, verbs in HELP_GROUPS.items()}
    placed = {v for verbs in grouped.values() for v in verbs}
    grouped["more"] = [v for v in helps if v not in placed]
    column = max(map(len, helps)) + 6
    lines = ["commands, by task (`evalflow COMMAND --help`: its options and an example):"]
    for title, verbs in grouped.items():
        if verbs:
            lines += ["", f"  {title}"]
        for verb in verbs:
            text = textwrap.wrap(helps[verb], width - column) or [""]
            lines.append(f"    {verb:<{column - 4}}{text[0]}")
            lines += [" " * column + rest for rest in text[1:]]
    return "\n".join(lines)


#: After an unknown option named like a credential (``--api-key KEY``, as vLLM's and
#: llama-server's clients take it): its value is masked, and where a key goes is said.
KEY_HINT = (
    "; a key is never given as an option (a CI log would keep it): put it in an "
    "environment variable and name that variable with api_key_env in the spec's host "
    "(judge: --api-key-env)"
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``error: ...``, exit 2) like every other,
    the URLs the command was given (``known``, set by ``build_parser``) masked in it."""

    known: Sequence[str] = ()

    def error(self, message: str) -> NoReturn:
        shown = printable(redact(message, self.known))
        self.exit(2, f"error: {self.prog}: {shown} (see {self.prog} --help)\n")

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """An argument left over is refused by the parser that was given it: the verb's
        own, so the line names the verb ("evalflow recommend: unrecognized arguments"),
        not just "evalflow" (argparse hands a verb's leftovers to the top parser)."""
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            hint = KEY_HINT if gives_a_key(extras) else ""
            self.error(f"unrecognized arguments: {' '.join(redact_argv(extras))}{hint}")
        return parsed, extras


class _Help(argparse.RawDescriptionHelpFormatter):
    """Help that states each option's default (unless its text already does) and keeps
    the example's line breaks, a line wider than the help's width wrapped at its spaces
    (`gate --help`'s description was one line of 370 characters)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        from flows.cli._width import fitted

        # argparse's ``width`` is the terminal's less a margin of 2: a line within the
        # terminal (an example command) is left whole
        lines = fitted(text, width + 2).split("\n")
        return "\n".join(f"{indent}{line}" for line in lines)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or any(default is none for none in (None, False, argparse.SUPPRESS))
            or not action.option_strings
        ):
            return text
        return f"{text} (default: {default})".strip()


def _global_options(parser: argparse.ArgumentParser, *, after_verb: bool) -> None:
    """Options every command takes, before or after its verb. After the verb they default
    to SUPPRESS, so one given before the verb is not overwritten."""
    keep = {"default": argparse.SUPPRESS} if after_verb else {}
    parser.add_argument(
        "--database",
        help="SQLAlchemy URL (default: $EVALFLOW_DATABASE_URL, else a SQLite file in "
        "$EVALFLOW_HOME, else in ~/.evalflow)",
        **keep,
    )
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="Prefect's own INFO lines, full tracebacks of errors and failed flows",
        **keep,
    )
    loudness.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only the result and errors (no progress, no log lines)",
        **keep,
    )


def _verbs(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command parser under ``parser``, nested ones included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield name, child
                yield from _verbs(child)


class _Version(argparse._VersionAction):
    """``--version``, looked up only when asked for: the installed package's metadata
    takes tens of milliseconds every other command would pay."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        self.version = f"evalflow {_version()}"
        super().__call__(parser, namespace, values, option_string)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evalflow")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


#: The exit codes of every command but those that say their own (`health`, `gate`, `trends
#: --check`, `recommend`), as `evalflow --help`, `run --help` and `judge --help` list them
#: (docs/bad-input.md#exit-codes).
EXIT_CODES = (
    "exit codes: 0 done; 1 failed (some of the work failed, or evalflow did: -v shows "
    "why); 2 refused: bad input, or a host that cannot be reached as configured (fix the "
    "command, spec or URL); 75 refused for now: a host or the Prefect API is busy, not "
    "down, the experiment is running elsewhere, or the results database stayed locked by another "
    "process's write (run the same command later); 130 / 143 / 129 "
    "stopped by Ctrl-C / SIGTERM / SIGHUP (docs/bad-input.md#exit-codes)"
)
LISTS_EXIT_CODES = ("run", "judge")  # the verbs that refuse with 75 (a busy host, a run elsewhere)


def build_parser(known: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The command line; ``known``: the URLs it was given that hold a credential
    (``evaluation.redact.urls_given``), masked in its error lines."""
    parser = _Parser(
        prog="evalflow",
        usage="evalflow [--database URL] [-v | -q] command ...",
        description=textwrap.fill(DESCRIPTION, HELP_WIDTH),
        formatter_class=_Help,
        epilog=textwrap.fill(EXIT_CODES, HELP_WIDTH) + "\n\n"
        "example: evalflow run benchmarks/sweeps/demo-simulated.yaml\n"
        "         evalflow show demo-simulated",
    )
    parser.add_argument("--version", action=_Version)
    _global_options(parser, after_verb=False)
    # listed by task in the description (command_list), not as argparse's one flat list
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="command", help=argparse.SUPPRESS, prog="evalflow"
    )
    for group in VERB_GROUPS:
        group.register(sub)
    parser.description = f"{parser.description}\n\n{command_list(sub)}"
    parser.known = known
    for name, verb in _verbs(parser):
        verb.known = known
        verb.formatter_class = _Help
        _global_options(verb, after_verb=True)
        if name in EXAMPLES and verb.epilog is None:
            verb.epilog = f"example:\n  {EXAMPLES[name]}"
        if name in LISTS_EXIT_CODES:  # before the example, which ends every help
            verb.epilog = f"{textwrap.fill(EXIT_CODES, HELP_WIDTH)}\n\n{verb.epilog or ''}"
    return parser


#: Commands that read stored results: a SQLite file that is not there is a wrong path,
#: not an empty database (opening it would create an empty file and answer "none yet").
#: Commands that read, serve or print and store no work of their own: Ctrl-C stops
#: them, and a rerun has nothing to resume ("interrupted: rerun the same command to
#: resume" on `view` sent a newcomer looking for what).
NOTHING_TO_RESUME = frozenset(
    {"view", "monitor", "serve", "show", "experiments", "compare", "status", "export"}
    | {"plan", "power", "trends", "gate", "doctor", "health", "metrics", "report"}
    | {"review", "rate-next", "judge-card", "recommend", "series"}
)

#: What Ctrl-C on a command that stores work says: what became of it, and what a rerun
#: does; "resume" only where a rerun keeps what was done (tests/flows/cli/test_interrupts.py).
ON_INTERRUPT = {
    "run": "interrupted: rerun the same command to resume",
    "judge": "interrupted: rerun the same command to resume (verdicts stored are skipped)",
    "rescore": "rescore stopped: scores are stored together once all are computed; rerun the "
    "same command to score again from the start",
    "bank": "bank stopped: a bank version is stored whole when its calibration ends; rerun "
    "the same command to calibrate from the start",
    "retrain": "retrain stopped: a selector version is stored whole when its training ends; "
    "rerun the same command to train from the start",
    "import-ratings": "import-ratings stopped: a file's ratings are stored together or not "
    "at all; rerun the same command to import it (ratings already there are not doubled)",
    "baseline": "baseline stopped: an accept or its withdrawal is stored whole or not at all; "
    "rerun the same command",
    "deploy": "deploy stopped: rerun the same command (deployments are registered by name: "
    "a rerun updates those already there)",
}

READS_STORED_RESULTS = frozenset(
    {"rescore", "experiments", "show", "export", "compare", "baseline", "review", "report"}
    | {
        "judge",
        "import-ratings",
        "judge-card",
        "rate-next",
        "recommend",
        "retrain",
        "view",
        "series",
        "trends",
        "gate",
        "monitor",
        "status",
    }
)


@contextmanager
def _database_in_environment(args: argparse.Namespace) -> Iterator[None]:
    """``--database`` reaches flows through the environment, never as a parameter: flow
    parameters are stored in Prefect's database and shown in its UI, passwords and all.
    The variable is restored afterwards (main() may run in-process, e.g. in tests)."""
    from evaluation.settings import DATABASE_URL_ENV, check_database_url

    if not args.database:
        yield
        return
    check_database_url(args.database, "--database")
    before = os.environ.get(DATABASE_URL_ENV)
    os.environ[DATABASE_URL_ENV], args.database = args.database, None
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DATABASE_URL_ENV, None)
        else:
            os.environ[DATABASE_URL_ENV] = before


@contextmanager
def _input_warnings_once(known: Sequence[str]) -> Iterator[None]:
    """Each InputWarning (a forgeable hidden test, ...) as one `warning:` line on stderr,
    once per command although the input is read more than once (`run` checks the plan,
    then the sweep loads the suite), each ReadNote (a scorer read as its stored
    declaration says) as one `note:` line so; other warnings as Python shows them."""
    shown: set[str] = set()
    python_shows = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if not issubclass(category, InputWarning | ReadNote):
            python_shows(message, category, filename, lineno, file, line)
            return
        text = one_line(str(message), limit=1000, known=known)
        if text not in shown:
            shown.add(text)
            said = "warning" if issubclass(category, InputWarning) else "note"
            print(f"{said}: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", InputWarning)  # we say what was said already
        warnings.simplefilter("always", ReadNote)
        warnings.showwarning = show
        yield


def console_main() -> int:
    """The `evalflow` executable: :func:`main`, then a cheap exit. Python's exit ends with
    a garbage collection over every object still alive (~0.8 s with Prefect, pandas,
    scipy and matplotlib loaded, benchmarks/perf/sweep_e2e.py's "exit"); frozen, they
    are left to the process's end like everything else. Also where the command leaves
    by SystemExit: `serve` on SIGTERM (Prefect's runner exits so) spent 6-10 s of its
    stop collecting at load 20."""
    try:
        return main()
    finally:
        gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    # The embedded Prefect server otherwise logs an ERROR when it cannot reach Prefect's
    # telemetry endpoint (machines without internet); a user's own setting wins.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's API on this machine (Prefect's temporary server, a loopback
    # PREFECT_API_URL) is not reached through a proxy for the web.
    bypass_proxies_for_loopback()
    argv = list(sys.argv[1:] if argv is None else argv)
    known = urls_given(argv, os.environ)
    parser = build_parser(known)
    if not set(argv) - {"-v", "--verbose", "-q", "--quiet"}:  # `evalflow` alone: no command
        parser.print_help()
        return EXIT_BAD_INPUT
    args = parser.parse_args(argv)  # a bad option: one line, exit 2 (options.py)
    args.argv, args.known = argv, known
    try:
        with ignored_sigint_taken(args.command in ON_INTERRUPT):
            release_held(args.command)  # a Ctrl-C while the CLI imported: the verb's line
            if args.command in READS_STORED_RESULTS:  # the default file is each command's
                from evaluation.settings import refuse_a_named_database_not_there
                from flows.cli._database import refuse_an_experiment_of_a_fresh_home

                refuse_a_named_database_not_there(args.database, "--database")
                refuse_an_experiment_of_a_fresh_home(args)
            with _database_in_environment(args), _input_warnings_once(known):
                try:
                    return args.func(args)
                finally:  # a command run next in this process (a script, tests) reads none
                    forget_declarations()
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM/SIGHUP where a verb takes it so
        say_stopped(ON_INTERRUPT.get(args.command, f"{args.command} stopped"))
        return exit_code(interrupt)
    except BrokenPipeError:  # the reader went away (`evalflow plan … | head`): stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the exit's flush writes nowhere
        return 128 + signal.SIGPIPE
    except Exception as exc:  # the edge: whatever went wrong, one line (-v: the traceback)
        if args.verbose:
            print_masked_traceback(known)
        code, line = error_line(exc, known)
        print(f"error: {printable(line)}", file=sys.stderr)  # it may echo a file's key
        return code


def error_line(exc: BaseException, known: Sequence[str] = ()) -> tuple[int, str]:
    """The exit code and the one line (credentials masked, those of the ``known`` URLs
    wherever they appear) for an error that ended a command: 2 for bad input (an
    EvalError, a path that cannot be used), 1 for anything else, which is evalflow's
    failure, not the user's; 75 where the command is refused for now (``TryLater``: a
    host busy, not down; the experiment run by another process; the results database
    locked by another's write, also a raw SQLite lock error reaching here): the same
    command may work later, nothing to fix."""
    if isinstance(exc, TryLater):
        return EXIT_TRY_LATER, redact(str(exc), known)
    if isinstance(exc, EvalError):  # a suite's several problems keep their own lines
        return EXIT_BAD_INPUT, redact(str(exc), known)
    if isinstance(exc, OSError) and exc.errno in options.PATH_ERRNOS and exc.filename:
        return EXIT_BAD_INPUT, one_line(f"{exc.filename}: {exc.strerror}", known=known)
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import SQLAlchemyError

        from evaluation.storage.db import locked, storage_problem

        if isinstance(exc, SQLAlchemyError) and locked(exc):  # another's write: try later
            return EXIT_TRY_LATER, (
                f"the results database: {storage_problem(exc, known)} (another process "
                "writes to it); run the same command again once it has written"
            )
        if isinstance(exc, SQLAlchemyError):  # not its statement, nor the parameters
            return EXIT_FAILED, f"the results database: {storage_problem(exc, known)}"
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    what = one_line(what, known=known)
    return (
        EXIT_FAILED,
        f"evalflow failed: {what} (not a problem with your input; -v shows the traceback)",
    )
