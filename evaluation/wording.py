"""Counts as people read them: "1 sample", "2 samples"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one ("1 sample", "0 samples", "3 configs")."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
