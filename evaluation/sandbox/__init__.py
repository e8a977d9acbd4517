"""Running model-written code: only inside a bubblewrap sandbox (``_bubblewrap``: no
network, read-only system, private tmpfs, resource limits, dies with its parent), and a
program's hidden tests run one by one in it (``_programs``)."""

from evaluation.sandbox._bubblewrap import Limits, RunResult, Sandbox, SandboxUnavailable
from evaluation.sandbox._programs import CodeExecution, ProgramReport

__all__ = ["CodeExecution", "Limits", "ProgramReport", "RunResult", "Sandbox", "SandboxUnavailable"]
