"""Whether a config's prompt fits its context window: a fact read from stored token counts.

A prompt longer than ``num_ctx`` is cut by the server without a word (Ollama keeps the
last ``num_ctx`` tokens), so the answer is made from part of the input. The server says
how many prompt tokens it evaluated (``prompt_eval_count``, the frame's
``prompt_tokens``): at most ``num_ctx`` when it cut, and fewer than the prompt where a
cached prefix was not evaluated again; so every stored count is a lower bound on its
prompt's length. The prompt is the template's text around the case's input, read by the
model's tokenizer: the same for every generation setting. So a stored generation of a
model and template on a case of ``c`` input characters that evaluated ``p`` tokens says
that with this model and template any input of at least ``c`` characters makes a prompt
of more than ``num_ctx`` tokens wherever ``p > num_ctx``: nothing predicted, nothing
assumed but that a longer input does not make a shorter prompt. Configs with the
server's default ``num_ctx`` (unset: the default varies by server version) are never
said not to fit.

:func:`prompt_lengths` keeps, per (model, template, template text, task type), the
staircase of the most tokens evaluated on cases up to each input length;
:func:`overflow` reads it for the candidates of a query.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ("model", "template", "template_text", "task_type")
COLUMNS = (*KEYS, "input_chars", "prompt_tokens")
_DTYPES = {"input_chars": float, "prompt_tokens": float}


def prompt_lengths(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (model, template, template text, task type), the input lengths at which the
    most prompt tokens evaluated on cases no longer than that rises, with that count
    (columns ``COLUMNS``); empty where the frame stores no token counts."""
    if "prompt_tokens" not in frame:
        return pd.DataFrame({c: pd.Series(dtype=_DTYPES.get(c, object)) for c in COLUMNS})
    rows = frame.loc[frame["prompt_tokens"].notna() & frame["input_chars"].notna(), list(COLUMNS)]
    rows = rows.astype(_DTYPES).groupby([*KEYS, "input_chars"], as_index=False).max()
    rows["prompt_tokens"] = rows.groupby(list(KEYS))["prompt_tokens"].cummax()
    earlier = rows.groupby(list(KEYS))["prompt_tokens"].shift()
    return rows[(earlier.isna() | (rows["prompt_tokens"] > earlier)).to_numpy()].reset_index(
        drop=True
    )


def overflow(
    lengths: pd.DataFrame, candidates: pd.DataFrame, task_type: str, input_chars: float
) -> pd.Series:
    """Per candidate (``model``, ``template``, ``template_text``, ``num_ctx``), the most
    prompt tokens a stored ``task_type`` case of at most ``input_chars`` characters took
    with its model and template, where that exceeds the candidate's ``num_ctx``: its
    prompt does not fit for inputs of that length. NaN where it fits or nothing says."""
    none = pd.Series(np.nan, index=candidates.index)
    if lengths.empty or not np.isfinite(input_chars) or "num_ctx" not in candidates:
        return none
    here = lengths[(lengths["task_type"] == task_type) & (lengths["input_chars"] <= input_chars)]
    if here.empty:
        return none
    most = here.groupby(list(KEYS[:3]))["prompt_tokens"].max()
    keys = pd.MultiIndex.from_frame(candidates[list(KEYS[:3])].astype(str))
    seen = pd.Series(most.reindex(keys).to_numpy(dtype=float), index=candidates.index)
    num_ctx = pd.to_numeric(candidates["num_ctx"], errors="coerce").astype(float)
    return seen.where(seen > num_ctx)
