"""Config labels people can tell apart: what varies between the configs shown together,
without what every one of them shares. The one label function of every output (terminal,
comparison, verdict, report and plots, view, artifacts), so a config reads the same
everywhere. Labels are never clipped: a cut label hides the parameter that differs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from evaluation.errors import EvalError

_DROPPED_PREFIXES = ("tpl=",)  # "tpl=concise" reads as "concise"
_NUM_PREDICT_WORD = re.compile(r"n=\d+")
MAX_LISTED = 20
"""A refusal lists this many of an experiment's configs, then says how many more."""
NUM_PREDICT_KEY = "n= is num_predict, the most tokens an output may have"
"""What "n=" in a label is, said once where labels show it: "n=24" read as a sample size."""


def legacy_label(label: str) -> str:
    """``label`` (``Config.label``) as evalflow wrote it before it showed num_predict
    ("n=64", 2026-11-24): the name a spec, a script or an experiment stored then may
    give a config, accepted where no config has it as its label."""
    return " ".join(word for word in label.split() if not _NUM_PREDICT_WORD.fullmatch(word))


def distinguishing_labels(labels: Sequence[str]) -> dict[str, str]:
    """Each full label (``Config.label``) -> its words that not every label shares, with
    "tpl=" dropped; the full labels when that would make two of them equal or leave one
    with no word (names of one kind side by side: "stop=x" next to "m t=0" read as two
    kinds of name). A single label keeps its every word."""
    words = [label.split() for label in labels]
    common = set.intersection(*(set(w) for w in words)) if len(words) > 1 else set()
    short = {
        label: " ".join(_shown(x) for x in w if x not in common)
        for label, w in zip(labels, words, strict=True)
    }
    whole = all(short.values()) and len(set(short.values())) == len(short)
    return short if whole else {x: x for x in labels}


def shared_settings(labels: Iterable[str]) -> str:
    """The words every label shares, in the first label's order ("t=0 seed=42"): what
    :func:`distinguishing_labels` leaves out, for a line under a table."""
    labels = list(labels)
    if len(labels) < 2:
        return ""
    common = set.intersection(*(set(label.split()) for label in labels))
    return " ".join(_shown(x) for x in labels[0].split() if x in common)


def settings_footer(labels: Sequence[str], default: int) -> str:
    """The line under a table of configs (``labels`` their full labels): the settings
    every config shares (:func:`shared_settings`) with num_predict spelled out, and,
    where the table's labels show "n=", that it is num_predict and what a label without
    it generates (``default``). Under a leaderboard "n=24" read as a sample size of 24."""
    return "; ".join(part for part in settings_parts(labels, default) if part)


def settings_line(labels: Sequence[str], default: int) -> str:
    """:func:`settings_footer` as a line of its own: "Every config: " before the settings
    they share, the "n=" key after; only the key where they share none (one config, whose
    label shows its every setting, was footed "Every config: n= is num_predict, ...")."""
    shared, note = settings_parts(labels, default)
    return "; ".join(part for part in (shared and f"Every config: {shared}", note) if part)


def settings_parts(labels: Sequence[str], default: int) -> tuple[str, str]:
    """The shared settings with num_predict spelled out, and what "n=" is ("" each where
    there is nothing to say): for a line that leads the settings with its own words."""
    shared = num_predict_spelled(shared_settings(labels))
    shown = [shows_num_predict(label) for label in distinguishing_labels(labels).values()]
    note = NUM_PREDICT_KEY if any(shown) else ""
    if any(shown) and not all(shown):
        note += f" ({default} where no n= is shown)"
    return shared, note


def num_predict_spelled(label: str) -> str:
    """``label`` with its "n=24" as "num_predict=24": where no footer says what n= is
    (a label alone on a line, ``show --wide``'s column), it read as a sample size."""
    return " ".join(
        f"num_predict={word[2:]}" if _NUM_PREDICT_WORD.fullmatch(word) else word
        for word in label.split()
    )


def shows_num_predict(text: str) -> bool:
    """Whether ``text`` (a label, or a line of them) has an "n=24" word."""
    return any(_NUM_PREDICT_WORD.fullmatch(word.strip("(),;:")) for word in text.split())


def _shown(word: str) -> str:
    for prefix in _DROPPED_PREFIXES:
        word = word.removeprefix(prefix)
    return word


def configs_named(ref: str, hashes: Sequence[str], labels: Sequence[str]) -> list[str]:
    """The hashes of the configs (one experiment's, ``labels`` their full labels) that
    ``ref`` names, by every name an output shows for a config, in this order: the hash,
    the full label, the shown label (:func:`distinguishing_labels`, with "[<hash head>]"
    where labels repeat), the full label as written before (:func:`legacy_label`), words
    that are all in the label ("sim-large:8b plain", "t=0 n=64": a shown label with
    words every config shares put back, as another experiment's output names it; "tpl="
    optional), a hash prefix. The first of these that names any config decides; more
    than one hash back means ``ref`` is ambiguous. Spaces around or doubled inside
    ``ref`` and an upper-case hash name the same configs (a copied name often has them)."""
    ref = " ".join(ref.split())
    digest = ref.lower()
    short = distinguishing_labels(labels) if labels else {}
    shown = [
        {short[label], f"{short[label]} [{h[:8]}]", f"{label} [{h[:8]}]"}
        for h, label in zip(hashes, labels, strict=True)
    ]
    for hits in (
        [h for h in hashes if h == digest],
        [h for h, label in zip(hashes, labels, strict=True) if label == ref],
        [h for h, names in zip(hashes, shown, strict=True) if ref in names],
        [h for h, label in zip(hashes, labels, strict=True) if legacy_label(label) == ref],
        [h for h, label in zip(hashes, labels, strict=True) if _words_in(ref, label)],
        [h for h in hashes if digest and h.startswith(digest)],
    ):
        if hits:
            return list(dict.fromkeys(hits))
    return []


def configs_fitting(
    ref: str, hashes: Sequence[str], labels: Sequence[str], named: Sequence[str]
) -> list[str]:
    """What a refusal of ``ref`` lists: the configs it ``named`` (:func:`configs_named`),
    or, where it named none, those whose labels it is part of ("gemma")."""
    return list(named) or [
        h for h, label in zip(hashes, labels, strict=True) if part_of_label(ref, label)
    ]


def config_named(
    ref: str, hashes: Sequence[str], labels: Sequence[str], experiment: str, hint: str = ""
) -> str:
    """The hash of the one config of ``experiment`` (its name) that ``ref`` names
    (:func:`configs_named`); otherwise EvalError in the words every command uses: the
    configs it fits (part of their labels counts here: "gemma"), or all of them (``hint``
    after the list), each as ``show`` prints it, quoted for a shell."""
    hits = configs_named(ref, hashes, labels)
    if len(hits) == 1:
        return hits[0]
    shown = distinguishing_labels(labels) if labels else {}
    named = {h: f"{quoted(shown[label])} ({h})" for h, label in zip(hashes, labels, strict=True)}
    fits = configs_fitting(ref, hashes, labels, hits)
    if len(fits) > 1:
        listing = "; ".join(named[h] for h in dict.fromkeys(fits))
        raise EvalError(
            f"config {quoted(ref)} fits several configs of {experiment}: {listing}; "
            "name one of them (its name as listed, or its hash)"
        )
    raise EvalError(
        f"experiment {experiment} has no config {quoted(ref)}; "
        f"its configs: {listed(list(named.values()), [experiment])}{hint}"
    )


def listed(names: Sequence[str], experiments: Sequence[str]) -> str:
    """``names`` (configs of ``experiments``, as a refusal shows them) joined: the first
    ``MAX_LISTED``, then how many more and where to see them all."""
    known = "; ".join(names[:MAX_LISTED])
    if len(names) > MAX_LISTED:
        where = ", ".join(f"`evalflow show {e} --wide`" for e in experiments)
        known += f"; {len(names) - MAX_LISTED} more ({where})"
    return known


def quoted(name: str) -> str:
    """``name`` in single quotes as a POSIX shell reads it back (no escapes inside, unlike
    ``repr``): pasting it as an argument gives ``name`` exactly."""
    return "'" + name.replace("'", "'\\''") + "'"


def _words_in(ref: str, label: str) -> bool:
    """Whether every word of ``ref`` is a word of ``label`` ("tpl=" optional on both)."""
    words = {_shown(word) for word in ref.split()}
    return bool(words) and words <= {_shown(word) for word in label.split()}


def part_of_label(ref: str, label: str) -> bool:
    """Whether ``ref`` is part of ``label`` (case aside): "gemma" fits "gemma3-270m t=0"."""
    return bool(ref) and ref.casefold() in label.casefold()
