"""What ``--skip`` leaves out, checked alike by the CI gate (its checks) and ``evalflow
trends`` (its metrics): a name that is none of them would leave nothing out silently,
and leaving every one out would pass anything."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from evaluation.errors import EvalError


def check_skip(
    skip: Collection[str],
    known: Sequence[str],
    error: type[EvalError],
    *,
    noun: str,
    of: str,
    nothing: str,
) -> None:
    """``error`` for a name in ``skip`` not in ``known`` ("--skip: no check named 'x';
    the checks of this gate: …"), or for ``skip`` covering all of ``known`` ("--skip
    leaves out every check: nothing would be gated")."""
    unknown = [name for name in skip if name not in known]
    if unknown:
        raise error(
            f"--skip: no {noun} named {unknown[0]!r}; the {noun}s of {of}: {', '.join(known)}"
        )
    if set(known) <= set(skip):
        raise error(f"--skip leaves out every {noun}: nothing would be {nothing}")
