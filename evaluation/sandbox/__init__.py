"""Running model-written code: only inside a bubblewrap sandbox (``_bubblewrap``: no
network, nothing of evalflow readable, a read-only file system but a small /tmp, dies
with its parent), under a seccomp filter (``_seccomp``) and, where one can be created, a
cgroup that bounds the whole sandbox's memory, processes and CPU time (``_cgroups``); a
program's hidden tests run one by one in it, each reported as it ends (``_programs``)."""

from evaluation.sandbox._bubblewrap import Limits, RunResult, Sandbox, SandboxUnavailable
from evaluation.sandbox._programs import CodeExecution, ProgramReport

__all__ = ["CodeExecution", "Limits", "ProgramReport", "RunResult", "Sandbox", "SandboxUnavailable"]
