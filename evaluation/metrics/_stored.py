"""Users' scorers as the results database keeps their declarations (``@scorer``: score
type, direction, corpus form), stored when they score. A command that only reads
results (`show`, `compare`, `export`, `report`, `view`, and the `compare` flow of
`compare --publish`) remembers them here when it opens the database
(``evaluation.storage.scorers``), so a scorer whose code does not import where it reads
(a teammate's copy of the database) is read as it declared itself, not refused or ranked
the wrong way. A command that scores remembers none, and refuses such a scorer as before.
Plain Python: `show` reads it without the scorers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class StoredDeclaration:
    """A user's scorer's declaration as stored when it last scored."""

    metric: str  # as a spec names it: module:function, or an entry point's name
    score_type: str
    higher_is_better: bool
    corpus_level: bool
    description: str
    source: str  # the module:function it was loaded from
    experiment: str | None = None  # the experiment it scored (None: the name's latest)


@dataclass
class _Read:
    """The declarations the database held where the command read it, each name's in the
    order they were declared (None: it has no table of them, an older evalflow's
    database read where it may not be written), and the experiments the command reads."""

    declarations: dict[str, list[StoredDeclaration]] | None
    database: str
    experiments: frozenset[str]


_read: _Read | None = None  # None: none read (a command that scores)
#: The experiment one page of `view`'s server shows (:func:`reading_experiment`), read
#: in place of those the command named; None: the command's.
_page: ContextVar[str | None] = ContextVar("evalflow_declarations_page", default=None)


def remember_declarations(
    declarations: Iterable[StoredDeclaration] | None,
    database: str,
    experiments: Iterable[str] = (),
) -> None:
    """Read users' scorers whose code does not import with ``declarations``, those the
    results database ``database`` (its name as messages give it) holds, in the order they
    were declared; None where it holds no table of them. ``experiments``: those the
    command reads, whose own declarations come first (``stored_declaration``)."""
    global _read
    held = None
    if declarations is not None:
        held = {}
        for declaration in declarations:
            held.setdefault(declaration.metric, []).append(declaration)
    _read = _Read(held, database, frozenset(experiments))


@contextmanager
def remembering(
    declarations: Iterable[StoredDeclaration] | None,
    database: str,
    experiments: Iterable[str] = (),
) -> Iterator[None]:
    """``remember_declarations`` while the block runs (a flow that only reads: `compare
    --publish`'s, which a deployment's worker may run beside flows that score); what was
    remembered before comes back after."""
    global _read
    before = _read
    remember_declarations(declarations, database, experiments)
    try:
        yield
    finally:
        _read = before


@contextmanager
def reading_experiment(name: str) -> Iterator[None]:
    """While the block runs, in its context only (one request of `view`'s server), the
    experiment whose own declarations come first is ``name``: each experiment's page
    reads its own, not those of the experiment `view` was started on (5696e02e scoped
    them per experiment; a page of another read the started one's where both had one)."""
    token = _page.set(name)
    try:
        yield
    finally:
        _page.reset(token)


def _experiments() -> frozenset[str]:
    """The experiments whose own declarations come first: the page's, else the command's."""
    page = _page.get()
    if page is not None:
        return frozenset({page})
    return _read.experiments if _read is not None else frozenset()


def forget_declarations() -> None:
    """Back to reading none (as a command that scores does)."""
    global _read
    _read = None


def stored_declaration(name: str) -> StoredDeclaration | None:
    """The declaration remembered for the scorer called ``name``, or None: the one an
    experiment the command reads stored (the latest where it reads several that did;
    on a page of `view`, the page's experiment: :func:`reading_experiment`), else the
    latest any experiment stored (a command that names none, the monitor's pages)."""
    if _read is None or _read.declarations is None:
        return None
    held = _read.declarations.get(name, [])
    experiments = _experiments()
    own = [d for d in held if d.experiment in experiments]
    return (own or held or [None])[-1]


def declared_as(declaration: StoredDeclaration) -> str:
    """How ``declaration`` declared its scorer, as notes say it."""
    direction = "higher" if declaration.higher_is_better else "lower"
    corpus = ", a corpus headline" if declaration.corpus_level else ""
    return f"{declaration.score_type}, {direction} is better{corpus}"


def declared_otherwise(name: str) -> str:
    """Where the experiments the command reads declared the scorer ``name`` otherwise
    than one another (its code changed between their scorings), a clause saying what each
    declared and that all are read as the one ``stored_declaration`` gives ("" where they
    agree, or it reads fewer than two): one reading serves them all (`compare A B`). An
    experiment with no declaration of its own is counted with the latest any stored, as
    it is read alone."""
    experiments = _experiments()
    if _read is None or _read.declarations is None or len(experiments) < 2:
        return ""
    held = _read.declarations.get(name, [])
    read = stored_declaration(name)
    if not held or read is None:
        return ""
    each = {}
    for experiment in sorted(experiments):
        own = [d for d in held if d.experiment == experiment]
        each[experiment] = declared_as((own or held)[-1])
    if len(set(each.values())) < 2:
        return ""
    said = "; ".join(f"{experiment}: {how}" for experiment, how in each.items())
    whose = f"{read.experiment}'s, the latest" if read.experiment else "the latest"
    return f"; the experiments read declared it otherwise ({said}): all are read as {whose}"


def why_none_stored(name: str) -> str:
    """Why no declaration of the scorer ``name`` is remembered, as a clause to add to
    the error that its code does not import ("" where no database's were read)."""
    if _read is None:
        return ""
    if _read.declarations is None:
        return (
            f"; the results database {_read.database} keeps no scorers' declarations to read "
            "it with (an older evalflow wrote it, and it is read-only here): read it where "
            "the scorer's code imports"
        )
    return (
        f"; the results database {_read.database} keeps no declaration of it to read it with "
        "(it was scored before evalflow kept them): read it where its code imports, or "
        f"rescore it there (evalflow rescore EXPERIMENT --metrics {name}) to keep one"
    )
