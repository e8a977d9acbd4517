"""A review pair and a finished batch as markdown, for surfaces that show markdown (the
Prefect UI's pause form and its artifacts). The web page renders the same view itself."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

#: What a rater reads in the form beside a criterion's stars, where its name is not enough.
CRITERION_HINTS: Mapping[str, str] = {"speed": "latency shown once revealed"}
#: Why a blinded pair shows no latency.
LATENCY_HIDDEN = "latencies are shown once the pair is revealed: they would give the models away"


def criterion_label(criterion: str, side: str) -> str:
    """The label of one side's stars for ``criterion``, e.g. ``A: speed (latency ...)``."""
    hint = CRITERION_HINTS.get(criterion)
    return f"{side}: {criterion}" + (f" ({hint})" if hint else "")


def describe(view: Mapping[str, Any]) -> str:
    """The markdown shown above the form: the case (system prompt and every turn), its
    reference, both outputs, and the latencies last, under speed only (once revealed)."""
    parts = [f"### Pair {view['position']}: case `{view['case_id']}`", "**Input**"]
    turns = view.get("turns") or [{"role": "user", "content": view["input"]}]
    if view.get("system"):
        turns = [{"role": "system", "content": view["system"]}, *turns]
    for turn in turns:
        parts += [f"*{turn['role']}*", fenced(turn["content"])]
    if view["references"]:
        parts += ["**Reference**", fenced("\n\n".join(view["references"]))]
    for side in "AB":
        parts += [f"**Output {side}**", fenced(view["outputs"][side]["text"])]
    if any("latency_s" not in view["outputs"][side] for side in "AB"):
        parts.append(f"**Speed**: {LATENCY_HIDDEN}")
        return "\n\n".join(parts)
    latency = {side: view["outputs"][side]["latency_s"] for side in "AB"}
    shown = ", ".join(
        f"{side} {'unknown' if v is None else f'{v:.2f} s'}" for side, v in latency.items()
    )
    parts.append(f"**Speed** (for the speed stars only): latency {shown}")
    return "\n\n".join(parts)


def fenced(text: str) -> str:
    """A code fence longer than any run of backticks inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def revealed_markdown(experiment: str, rater: str, revealed: Sequence[tuple]) -> str:
    """The batch once rated: per pair, the preference and which config was A and B.
    ``revealed`` holds ``(pair_id, case_id, preference, {"A": label, "B": label})``."""
    lines = [
        f"# Review of {experiment} by {rater}",
        "",
        "| pair | case | preferred | A | B |",
        "|---|---|---|---|---|",
    ]
    for pair_id, case_id, preference, who in revealed:
        lines.append(f"| {pair_id} | {case_id} | {preference} | {who['A']} | {who['B']} |")
    return "\n".join(lines)
