"""Work items and their outcomes: the unit the pipeline schedules, retries and stores."""

from __future__ import annotations

from dataclasses import dataclass

from evaluation.backends.base import GenerationResult
from evaluation.backends.retry import FailedAttempt
from evaluation.pipelines._trace import CaseTrace
from evaluation.spec import Config, GenerationParams
from evaluation.suites import Case, Message, Suite

WorkKey = tuple[str, str, int]  # (config hash, case uid, sample index)


def case_uid(suite_name: str, case_id: str) -> str:
    """Database identity of a case: case ids need only be unique within their suite."""
    return f"{suite_name}/{case_id}"


@dataclass(frozen=True)
class WorkItem:
    """One generation to make: a config on a case, for one sample."""

    config: Config
    case: Case
    suite_name: str
    sample_index: int = 0

    @property
    def case_uid(self) -> str:
        return case_uid(self.suite_name, self.case.id)

    @property
    def key(self) -> WorkKey:
        return (self.config.hash, self.case_uid, self.sample_index)

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def params(self) -> GenerationParams:
        """What is sent for this sample: the config's parameters with the sample's seed."""
        return self.config.params.for_sample(self.sample_index)


@dataclass(frozen=True)
class GenerationRecord:
    """What happened to a work item: a result, or the reason it failed."""

    item: WorkItem
    host: str
    attempts: int
    result: GenerationResult | None = None
    error: str | None = None
    trace: CaseTrace | None = None  # the pipeline's calls (None: not run, or failed)
    failed_attempts: tuple[FailedAttempt, ...] = ()  # of its model calls, in order
    answered_at: float | None = None  # time.monotonic() when the result came (the ETA's)

    @property
    def ok(self) -> bool:
        return self.result is not None


def build_messages(config: Config, case: Case, suite: Suite) -> tuple[Message, ...]:
    """The chat messages for a case under a config's prompt template.

    The template wraps the case's user text (the last user message for chat inputs);
    the case's system prompt, when it has one, goes first.
    """
    variables = {
        "input": case.input_text,
        "labels": ", ".join(suite.labels),
        "task_type": suite.task_type,
    }
    prompt = config.template.text.format(**variables)
    messages: list[Message] = []
    if case.system:
        messages.append(Message("system", case.system))
    if isinstance(case.input, str):
        messages.append(Message("user", prompt))
        return tuple(messages)
    last_user = max(i for i, m in enumerate(case.input) if m.role == "user")
    for i, message in enumerate(case.input):
        messages.append(Message("user", prompt) if i == last_user else message)
    return tuple(messages)
