"""A flow's error, stored by Prefect as its run's state message, without credentials."""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from evaluation.redact import redact_exception, urls_given

P = ParamSpec("P")
R = TypeVar("R")


def _mask(exc: BaseException) -> None:
    redact_exception(exc, urls_given([], os.environ))


def masked_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Under ``@flow``: an exception leaving ``fn`` has the credentials of every URL the
    process was given (the environment's: the CLI puts ``--database`` there) masked in
    its message, which Prefect stores and shows as the flow run's state."""
    mask = _mask

    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            mask(exc)
            raise

    # Prefect resolves the flow's (string) annotations in its function's globals: the
    # wrapper runs with fn's, its own names reached through its closure only.
    wrapper = types.FunctionType(run.__code__, fn.__globals__, fn.__name__, None, run.__closure__)
    return functools.update_wrapper(wrapper, fn)
