"""What a suite is: its cases and the messages a prompt is made of (no loading here, so
metrics, backends and documents can name a ``Case`` without the loader's imports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

TaskType = Literal["qa", "summarization", "classification", "generation", "code"]
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Case:
    """One benchmark item.

    ``input`` is either a prompt string or a tuple of chat messages. ``references`` holds
    acceptable answers / reference summaries; ``label`` is the gold class for
    classification suites. ``group`` ties cases that share a passage or source, for
    clustered standard errors.
    """

    id: str
    input: str | tuple[Message, ...]
    references: tuple[str, ...] = ()
    label: str | None = None
    system: str | None = None
    group: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def input_text(self) -> str:
        """The input as one string (the last user message for chat inputs)."""
        if isinstance(self.input, str):
            return self.input
        users = [m.content for m in self.input if m.role == "user"]
        return users[-1] if users else ""

    @property
    def prompt_text(self) -> str:
        """Everything the model is given: the system prompt and every message."""
        messages = [self.input] if isinstance(self.input, str) else [m.content for m in self.input]
        return "\n".join([self.system or "", *messages])

    @property
    def targets(self) -> tuple[str, ...]:
        """What a correct output looks like: the references, else the label."""
        if self.references:
            return self.references
        return (self.label,) if self.label is not None else ()


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    task_type: TaskType
    default_metrics: tuple[str, ...]
    cases: tuple[Case, ...]
    labels: tuple[str, ...] = ()
    description: str = ""
    path: Path | None = None

    def case(self, case_id: str) -> Case:
        for case in self.cases:
            if case.id == case_id:
                return case
        raise KeyError(case_id)


# --- loading ---------------------------------------------------------------------------

TASK_TYPES: tuple[str, ...] = get_args(TaskType)
SIDECAR_SUFFIX = ".suite.yaml"


def suite_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot name a suite (its ``.jsonl`` or its sidecar), by its name alone;
    ``None`` when it can. Said by the suite loader and by a spec's ``suite:`` field."""
    if path.suffix == ".jsonl" or path.name.endswith(SIDECAR_SUFFIX):
        return None
    return f"expected a suite's .jsonl file or its {SIDECAR_SUFFIX} sidecar, got '{path.name}'"


ROLES: tuple[str, ...] = get_args(Role)
