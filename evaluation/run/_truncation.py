"""Whether a generation was cut by the context window, from what the server reported.

Servers cut silently, each its own way:

- Ollama cuts a prompt longer than ``num_ctx`` (2048 when unset) to fit and says nothing;
  what it reports is the tokens it evaluated (``prompt_eval_count``), at most ``num_ctx``.
  So a prompt evaluated to ``num_ctx`` tokens or more filled the window (a prompt of
  exactly ``num_ctx`` tokens is flagged too: with no room left to answer, it was cut in
  effect), as was a prompt surely longer than ``num_ctx`` (its whitespace words, a lower
  bound of its tokens) of which no more than ``num_ctx`` were evaluated.
- llama.cpp's server trims ``max_tokens`` when prompt + ``max_tokens`` exceed its context
  (2,030 prompt tokens, ``max_tokens`` 64: 18 tokens, finish_reason "length"): the output
  stops on a length limit before ``num_predict``. The same shows when prompt + output
  reach the server's context (``/props``' ``n_ctx``, where it says).

The words estimate alone misses a prompt whose words fit and tokens do not (a real
tokenizer splits words further); the server's counts do not.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerCounts:
    """What the server reported of one generation, and what was asked of it."""

    prompt_tokens: int | None  # None: not reported
    output_tokens: int
    done_reason: str
    num_predict: int | None  # the output limit sent (None: none)


def context_cut(counts: ServerCounts, *, context: int | None, words_estimate: int) -> bool:
    """Whether the prompt or the output was cut to the context window ``context``
    (Ollama's ``num_ctx``, or the server's own context; None: unknown)."""
    if context is not None and counts.prompt_tokens is not None:
        if counts.prompt_tokens >= context:
            return True
        if (
            counts.done_reason == "length"
            and counts.prompt_tokens + counts.output_tokens >= context
        ):
            return True
    reported = counts.prompt_tokens
    if context is not None and words_estimate > context and (reported or 0) <= context:
        return True
    return (
        counts.done_reason == "length"
        and counts.num_predict is not None
        and 0 <= counts.output_tokens < counts.num_predict
    )
