"""Runs programs' tests in the sandbox as whatever user starts it: the hostile battery's
run as a user other than root (``test_hostile_programs.py``), batched in one process.

Started by a user that cannot read the test suite's interpreter or checkout, it uses only
the standard library and the ``evaluation`` package beside it. Reads on stdin a JSON
object: ``limits`` (``Limits``' fields), ``test_timeout_s``, ``max_parallel`` and ``jobs``
(``[program, [test, ...]]`` each); writes on stdout ``enforcement`` (what bounded the
sandboxes) and each job's ``[share of tests passed, detail or null]``, as the
``tests_passed`` metric scores a report; or ``unavailable`` and why, where bubblewrap
cannot sandbox this user."""

import json
import sys

from evaluation.sandbox import CodeExecution, Limits, Sandbox, SandboxUnavailable


def main() -> None:
    job = json.load(sys.stdin)
    try:
        sandbox = Sandbox()
    except SandboxUnavailable as exc:
        json.dump({"unavailable": str(exc)}, sys.stdout)
        return
    execution = CodeExecution(
        sandbox, Limits(**job["limits"]), job["test_timeout_s"], job["max_parallel"]
    )
    reports = execution.run_tests([(program, tuple(tests)) for program, tests in job["jobs"]])
    scores = [[r.passed / r.total, None if r.all_passed else r.detail()] for r in reports]
    json.dump({"enforcement": sandbox.enforcement, "scores": scores}, sys.stdout)


if __name__ == "__main__":
    main()
