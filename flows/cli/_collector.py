"""Python's cyclic garbage collector while a start-up verb starts (issue 46).

Importing the database layer and the view's web stack makes some 300,000 objects, and
the collector walks them over and over as they are made: ~240 young collections, ~20 of
the middle generation and a full one, ~0.1 s of the ~0.5-0.6 s of CPU `show` costs
(15-20%), and of `view`'s first page. They make almost no garbage. So the verbs that
print and exit (`show`, `experiments`, `status`) run without the collector, as their
exit does (``app.console_main``), and the verbs that go on (`view`, `monitor`: served,
or `view --export`) have it back once started, what start-up made frozen
(``gc.freeze``: never walked again). Every other verb keeps it throughout: `run` holds a
sweep for hours."""

from __future__ import annotations

import gc

#: The verbs started without the collector: those that print and exit, and those whose
#: start-up ends in ``resume`` (their serving, or `view --export`).
STARTED_WITHOUT = frozenset({"show", "experiments", "status", "view", "monitor"})

_paused = False


def pause_for(command: str | None) -> None:
    """The collector off for ``command``'s start, where it is one of ``STARTED_WITHOUT``
    (the `evalflow` executable, before the CLI's modules are imported)."""
    global _paused
    if command in STARTED_WITHOUT and gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """The collector back where ``pause_for`` turned it off, what was made until now
    frozen; nothing where it did not (a command run in process, a test)."""
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False


def paused() -> bool:
    """Whether ``pause_for`` turned the collector off and nothing resumed it yet."""
    return _paused
