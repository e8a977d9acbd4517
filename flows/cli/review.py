"""Review and report commands: review, report, judge."""

from __future__ import annotations

import argparse
import errno
import getpass
import ipaddress
import os
import sys
from pathlib import Path

from evaluation.errors import (
    BackendError,
    BackendOverloaded,
    BackendTimeout,
    BackendUnavailable,
    EvalError,
    HostBusy,
    ModelNotFound,
    NotOllamaAPI,
)
from flows.cli import options
from flows.cli._database import open_engine
from flows.cli._serving import bind, serve
from flows.cli._signals import stop_signals_as_interrupt


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError) as exc:
        raise EvalError("cannot tell who you are: give --rater NAME") from exc


def cmd_review(args: argparse.Namespace) -> int:
    from evaluation.review.app import LOOPBACK_HOSTS, create_app
    from evaluation.view.session_key import keyed_link

    local = is_loopback(args.host)
    rater = args.rater or _login_name()
    if args.next:
        args.configs, args.pairs = _next_to_rate(args)
    sock = bind(args.host, args.port)  # a port in use is refused before the pairs are written
    try:
        app = create_app(
            open_engine(args),
            args.experiment,
            rater,
            configs=args.configs,
            per_pair=args.pairs,
            seed=args.seed,
            allowed_hosts=LOOPBACK_HOSTS if local else None,
            fast=args.fast,
            unrated_only=args.next,
        )
    except BaseException:
        sock.close()
        raise
    queue = app.state.queue
    if not local:
        print(
            f"warning: serving on {args.host}: anyone who has its link can rate as "
            f"{queue.rater}, and the link and ratings cross the network unencrypted (http)",
            file=sys.stderr,
        )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    link = keyed_link(f"http://{shown}:{args.port}/", app.state.key)
    print(
        f"Reviewing {len(queue.pair_ids)} blinded pairs of {queue.experiment} as "
        f"{queue.rater}: open {link} (its key lets only whoever has this link rate; "
        "Ctrl+C to stop)"
    )
    serve(app, sock)
    return 0


def _next_to_rate(args: argparse.Namespace) -> tuple[list[str], int]:
    """The two configs of the open comparison one more rating helps most, and how many
    cases to rate (at most --pairs): `evalflow rate-next` explains the choice."""
    from evaluation.calibration._combined import load_calibration
    from evaluation.calibration._plan import open_comparisons
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import get_experiment

    with session_scope(open_engine(args)) as session:
        row = get_experiment(session, args.experiment)
        comparisons = open_comparisons(load_calibration(session, int(row.id)))
    if not comparisons:
        raise EvalError(
            f"--next: {row.name} has no open comparison of a judge calibrated to people "
            f"(see `evalflow rate-next {row.name}`); review without --next"
        )
    best = comparisons[0]
    return [best.a, best.b], min(args.pairs, best.more or args.pairs)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the experiment's report: by default the one file its run wrote (brought up
    to date), not a second copy of another name in the current folder; say what it
    writes while it does (seconds of plots: a newcomer's sat silent for 19 s) and the
    file's full path."""
    from evaluation.report import write_report
    from evaluation.report.files import report_path, reports_folder
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import get_experiment
    from flows.cli._steps import Steps

    # It stores nothing in the database (only the HTML file): a read-only share's is read
    # as a snapshot, as `export` reads it (recheck R2: refused as a command that stores).
    with session_scope(open_engine(args, reads_only=True)) as session:
        name = get_experiment(session, args.experiment).name
        out = (args.out or report_path(reports_folder(), name)).resolve()
        if args.out is None:  # the parser checked a --out, not the default place
            _check_report_folder(out.parent)
        again = args.out is None and out.exists()
        kept = " (the report its run wrote, brought up to date)" if again else ""
        steps = Steps("report", enabled=not args.quiet)
        try:
            with steps.quiet_for_long(f"writing {out}{kept}"):
                path = write_report(session, name, out)
        except OSError as exc:  # a place the parser could not tell is unwritable
            if args.out is None and exc.errno in options.PATH_ERRNOS:
                raise _unwritable_report_folder(out.parent, exc) from exc
            raise options.cannot_write(exc, "report", "--out", out) from exc
    print(f"wrote {path}: the HTML report of {name} (self-contained; open it in a browser)")
    return 0


def _check_report_folder(folder: Path) -> None:
    """Refuse, before the report's "writing" line, a default reports folder that cannot
    be made or written (a read-only EVALFLOW_HOME: newcomer F3 was told, after "writing
    …", that an `argument --out` it never gave was at fault). Tried with a file made and
    removed at once: root passes a permission check a read-only mount still refuses."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise _unwritable_report_folder(folder, exc) from exc


def _unwritable_report_folder(folder: Path, exc: OSError) -> EvalError:
    return EvalError(
        f"cannot write the report to {folder}/ ({exc.strerror}): give --out FILE, or set "
        "EVALFLOW_HOME to a folder you may write"
    )


def cmd_judge(args: argparse.Namespace) -> int:
    import asyncio

    from evaluation.redact import redact_url
    from evaluation.review.judge import Judge, detect_kind
    from evaluation.review.judging import judge_experiment
    from evaluation.review.progress import JudgeProgress
    from evaluation.review.rubrics import load_rubric
    from evaluation.settings import ollama_url

    url = args.url or ollama_url()
    headers = _key_headers(url, args.api_key_env)  # an unset variable: refused now
    rubric = load_rubric(args.rubric) if args.rubric else None
    progress = JudgeProgress(lambda line: print(line, file=sys.stderr, flush=True))

    tried: list[str] = []  # the kinds the judge spoke to the host: the last for its hint

    async def judge_with(kind):
        tried.append(kind)
        async with Judge(
            url.removesuffix("/v1"),
            args.model,
            kind=kind,
            rubric=rubric,
            seed=args.seed,
            max_attempts=args.attempts,
            num_predict=args.num_predict,
            api_key_env=args.api_key_env,
        ) as judge:
            return await judge_experiment(
                open_engine(args),
                args.experiment,
                judge,
                configs=args.configs,
                limit_per_config=args.limit,
                pairwise=not args.no_pairwise,
                concurrency=args.concurrency,
                seed=args.seed,
                progress=progress,
            )

    async def run():
        kind = args.kind or await detect_kind(url, headers=headers)
        try:
            return await judge_with(kind)
        except NotOllamaAPI as exc:
            if args.kind or not exc.openai_compatible:
                raise NotOllamaAPI(
                    f"{exc.detail}; pass --kind openai",
                    detail=exc.detail,
                    openai_compatible=exc.openai_compatible,
                    host=exc.host,
                    model=exc.model,
                    status_code=exc.status_code,
                ) from None
        # detection went to Ollama (the server answered no probe in time), and the server
        # then showed it is OpenAI-compatible: judge with that
        print(
            f"note: {redact_url(url)} is OpenAI-compatible: judging with --kind openai",
            file=sys.stderr,
        )
        return await judge_with("openai")

    with stop_signals_as_interrupt():
        try:
            result = asyncio.run(run())
        except ModelNotFound as exc:
            listing = ", ".join(exc.available) or "no models"
            raise ModelNotFound(
                f"the judge host ({redact_url(url)}) does not have '{args.model}'; "
                f"it has: {listing}; name one with --model",
                available=exc.available,
                host=exc.host,
                model=exc.model,
            ) from None
        except BackendUnavailable as exc:
            kind = tried[-1] if tried else "ollama"
            raise _unreachable(exc, redact_url(url), args.url is not None, kind) from None
        except BackendOverloaded as exc:  # it answered 503: there, overloaded; try later
            raise _overloaded(exc, redact_url(url), args.url is not None) from None
    rate = "–" if result.contradiction_rate is None else f"{result.contradiction_rate:.0%}"
    asked = result.generations + result.pairs
    if asked and result.scored == 0 and result.pairs_judged == 0:
        print(
            f"error: {result.judge} scored none of {result.generations} generations and "
            f"{result.pairs} pairs: " + " | ".join(result.failures),
            file=sys.stderr,
        )
        return 1
    print(
        f"{result.judge}: {result.scored} of {result.generations} generations scored "
        f"({result.unscored} unscored); {result.pairs_judged} of {result.pairs} pairs "
        f"judged in both orders, self-contradiction rate {rate}"
    )
    if result.failures:  # some went unscored or unjudged: say why
        print("why unscored or unjudged: " + " | ".join(result.failures))
    return 0


def _key_headers(url: str, variable: str | None) -> dict[str, str]:
    """The judge host's key as the judge sends it (none without ``--api-key-env``);
    EvalError when the variable holds none."""
    from evaluation.backends._auth import api_key, auth_headers, unset
    from evaluation.spec import HostSpec

    if variable is not None and api_key(variable) is None:
        raise EvalError(f"--api-key-env: {unset(variable)}")
    return auth_headers(HostSpec("judge", url, api_key_env=variable))


def _unreachable(exc: BackendUnavailable, where: str, given: bool, kind: str) -> BackendUnavailable:
    """The judge's host not reached, in one line: the URL tried and where it came from,
    what the transport said, and the fix (start the server of the ``kind`` the judge
    spoke to it, or --url / OLLAMA_HOST), as `run`'s host check says it. A refused
    connection is not retried: it fails at once. A host that took the connection and
    kept silent is busy, not down (as `run` says it): the line says why and to wait."""
    from evaluation.run._preflight import START_OPENAI
    from evaluation.settings import OLLAMA_HOST_ENV

    reason, source = _reason(exc), _source(given)
    if isinstance(exc, BackendTimeout):
        # It listens and is busy with other requests: a judge started right after a run
        # was stopped waited 120 s on a llama-cpp-python server still generating the
        # run's abandoned requests, and was told to check its URL (newcomer N7).
        return HostBusy(  # try later: exit 75, not bad input's 2
            f"the judge host {where} ({source}) is busy, not down: connected, {reason} "
            "(asked for its models); a server that answers one request at a time "
            "(llama-cpp-python's) first finishes the requests it holds, those of a run "
            "that was stopped or gave up on them too: wait for it, or restart it, then "
            "run judge again",
            host=exc.host,
            model=exc.model,
        )
    if exc.connected:  # something listens there but drops the requests
        fix = "check that the URL is the model server's (its port) and that it is healthy"
    elif kind == "openai":
        fix = START_OPENAI
    else:
        fix = "start the model server there (Ollama: `ollama serve`)"
    return BackendUnavailable(
        f"cannot reach the judge host {where} ({source}): {reason}; {fix}, or name the "
        f"judge's host with --url or {OLLAMA_HOST_ENV}",
        host=exc.host,
        model=exc.model,
    )


def _overloaded(exc: BackendOverloaded, where: str, given: bool) -> HostBusy:
    """The judge's host answered 503: it is there and said it is overloaded, which the
    line says (not "cannot reach"), with when to run again; exit 75, not bad input's 2."""
    return HostBusy(
        f"the judge host {where} ({_source(given)}) answered: overloaded ({_reason(exc)}); "
        "run judge again when it is free",
        host=exc.host,
        model=exc.model,
    )


def _reason(exc: BackendError) -> str:
    """What the host or the transport said: "URL: ConnectError: ..." -> the cause."""
    said = str(exc)
    head, _, rest = said.partition(": ")
    return rest if rest and "://" in head else said


def _source(given: bool) -> str:
    """Where the judge's host URL came from."""
    from evaluation.settings import OLLAMA_HOST_ENV

    if given:
        return "--url"
    if os.environ.get(OLLAMA_HOST_ENV):
        return f"${OLLAMA_HOST_ENV}"
    return f"the default: ${OLLAMA_HOST_ENV} is not set"


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser("review", help="rate outputs side by side in a local web page")
    p.add_argument("experiment")
    p.add_argument("--rater", type=options.text, help="your name (default: your login name)")
    p.add_argument(
        "--host",
        type=options.address,
        default="127.0.0.1",
        help="address to serve on (default: loopback)",
    )
    p.add_argument("--port", type=options.port, default=8765, help="port to serve on")
    p.add_argument(
        "--configs",
        nargs="+",
        type=options.text,
        help="configs to pair (as show names them, full label, hash or prefix; default: 2 best)",
    )
    p.add_argument(
        "--pairs", type=options.count, default=10, help="pairs per two configs (default 10)"
    )
    p.add_argument("--seed", type=options.seed, default=0, help="seeds the cases and the sides")
    p.add_argument("--fast", action="store_true", help="ask only for the preference")
    p.add_argument(
        "--next",
        action="store_true",
        help="rate what settles the open comparisons of a judge calibrated to people "
        "(evalflow rate-next): its two configs, on cases nobody rated, drawn at random",
    )
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("report", help="write a self-contained HTML report")
    p.add_argument("experiment")
    p.add_argument(
        "--out",
        type=options.output_file,
        help="output file, replaced if it exists (default: the experiment's report its run "
        "wrote, brought up to date: $EVALFLOW_HOME/reports/evalflow-EXPERIMENT-report.html)",
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "judge",
        help="score outputs with a judge model on an Ollama or OpenAI-compatible host "
        "(resumes if interrupted)",
    )
    p.add_argument("experiment")
    p.add_argument(
        "--url",
        type=options.host_url,
        help="the judge's host (default: $OLLAMA_HOST, else 127.0.0.1:11434)",
    )
    p.add_argument(
        "--kind",
        choices=["ollama", "openai"],
        help="the host's API, as a spec's hosts: kind (default: detected from the URL and "
        "the server; see docs/running-for-real.md)",
    )
    p.add_argument(
        "--api-key-env",
        type=options.key_variable,
        metavar="VAR",
        help="the environment variable holding the host's key, sent as "
        "'Authorization: Bearer' (vLLM's --api-key, a gateway); the key is never shown",
    )
    p.add_argument(
        "--model", type=options.text, required=True, help="the judge model, e.g. qwen2.5:7b"
    )
    p.add_argument(
        "--configs", nargs="+", type=options.text, help="configs to judge (default: all)"
    )
    p.add_argument(
        "--limit",
        type=options.count,
        help="at most this many generations per config, and pairs per two configs",
    )
    p.add_argument("--no-pairwise", action="store_true", help="skip pairwise judging")
    p.add_argument(
        "--rubric",
        type=options.existing_file,
        help="a YAML rubric: criterion name -> what grades 1-5 mean",
    )
    p.add_argument(
        "--seed",
        type=options.seed,
        default=0,
        help="seeds the judge model and which pairs are judged",
    )
    p.add_argument(
        "--attempts", type=options.attempts, default=3, help="tries per malformed answer (1-100)"
    )
    p.add_argument(
        "--num-predict",
        type=options.tokens,
        default=512,
        help="most tokens per judge answer (default 512, at most 16777216)",
    )
    p.add_argument(
        "--concurrency", type=options.concurrency, default=2, help="judge calls at once (1-1024)"
    )
    p.set_defaults(func=cmd_judge)
