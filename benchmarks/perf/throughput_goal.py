"""Issue 46's figures side by side: a bare async httpx client, evalflow and Inspect AI on
one stand-in host with many slots and short requests.

Starts a stand-in Ollama (its own process; it also speaks OpenAI's /v1 for Inspect) with
``--slots`` slots and ``--latency-ms`` per request: ``--standin fast`` (the default,
``tests.support.standin_fast``: an ``asyncio.Protocol`` host costing ~0.2 ms of CPU an
answer) or ``asgi`` (``tests.support.standin_process``, uvicorn: ~1 ms an answer, itself
the bottleneck at 64 x 20 ms on this machine); then runs each client as its own process
tree on the same N generations (N / 8 cases x 8 temperatures, 16 tokens), one after the
other:

    bare      an async httpx loop: ``slots`` workers streaming /api/chat as evalflow's
              Ollama client does, nothing stored (httpx's own transport: httpcore)
    bare-wire the same loop on the transport evalflow's clients use
              (``evaluation/backends/_wire.py``): the bar for evalflow's rate
    bare-wire:K  the same in K processes at once, each its share of the slots and
              generations: the host's capacity where one process is short of CPU
    evalflow  ``python -m flows.cli run`` as a user runs it: embedded Prefect server,
              record writer, scoring, statistics, report, fresh homes; no ``--workers``
              (``run``'s default, whatever it is)
    evalflow:N the same with ``--workers N`` (``evalflow:1``: one process): the lanes in N
              worker processes (evaluation/run/_workers.py), records stored by the command
    before:N  ``evalflow:N`` from the checkout ``--before DIR`` (before/after, interleaved;
              ``before``: no ``--workers``)
    inspect   ``inspect eval`` through its OpenAI-compatible provider, at most ``slots``
              connections, exact-match scoring (skipped with a line when inspect_ai is
              not installed)

Per client: wall time; CPU of its whole process tree (this process is a child
subreaper, so the embedded server and any orphan are reaped here and counted in
RUSAGE_CHILDREN; psutil's sampled sum is the floor); peak memory of the tree: the sum of
its processes' RSS (psutil, every 0.2 s), of their PSS (every second) and its pages
each counted once (every 5 s: ``TreeWatch`` says which is the tree's memory); and from
the host's own counters: requests, the most open at once vs slots, the mean open over
its busy span (first request's start to last one's end) and the share of that span
with every slot busy, and the rate over the busy span, beside the bare
client's from the same run (the machine is shared: compare within a run; the bar is
bare-wire where it ran, else bare); the tree's CPU over that span per generation
(``phase ms/gen``: the generation phase, the embedded server included; from the 0.2 s
samples); the stand-in's own CPU per request.

``--kill-at K``: an evalflow run of N that is killed with SIGKILL (its whole process
group) once K generations are stored, then rerun: rows stored, distinct keys, and the
requests the resume sent against the work left (equal: nothing stored was redone);
``--kill-database URL``: that run stores into a fresh database on a PostgreSQL server.

``--profile DIR``: each client's request spans at the host (``spans-CLIENT-N.json``: start
and end of every request, to see where requests open fell), and, with py-spy on the PATH
(or ``$PY_SPY``), a few seconds of every evalflow process's samples while it holds the
interpreter (``CLIENT-N-PID-ROLE.txt``, collapsed stacks), taken once a quarter of the
generations is served; py-spy's own CPU is left out of the tree's.

    .venv/bin/python benchmarks/perf/throughput_goal.py --generations 4000 --slots 64 \
        --latency-ms 20
    .venv/bin/python benchmarks/perf/throughput_goal.py --generations 100000 \
        --clients evalflow --kill-at 50000
    .venv/bin/python benchmarks/perf/throughput_goal.py --generations 20000 --slots 64 \
        --latency-ms 20 --clients bare-wire,evalflow,evalflow:2,evalflow:4,evalflow:8
    (``--kill-at`` runs ``--workers N`` given as ``--kill-workers N``)
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import ctypes
import functools
import importlib.util
import json
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

INSTALL = ".venv/bin/pip install -c constraints.txt -e '.[bench]'"
try:
    import psutil
except ModuleNotFoundError:  # the README's install has no psutil: say so in one line
    sys.exit(f"throughput_goal.py needs psutil, the bench extra: {INSTALL}")

REPO = Path(__file__).resolve().parents[2]
CODE = [REPO]  # the checkout whose evalflow runs (--evalflow-code: before/after figures)
BEFORE: list[Path | None] = [None]  # --before: the checkout the ``before:N`` clients run
TEMPERATURES = [round(0.1 * i, 1) for i in range(8)]
MODEL = "bench:1b"
PR_SET_CHILD_SUBREAPER = 36

INSPECT_TASKS = """
from inspect_ai import Task, task
from inspect_ai.dataset import FieldSpec, json_dataset
from inspect_ai.model import GenerateConfig
from inspect_ai.scorer import exact
from inspect_ai.solver import generate

def _bench(temperature):
    dataset = json_dataset("{suite}", FieldSpec(input="input", target="references", id="id"))
    return Task(dataset=dataset, solver=generate(), scorer=exact(),
                config=GenerateConfig(temperature=temperature, max_tokens=16))
{tasks}
"""


@dataclass
class Figures:
    """One client's run: its process tree's cost and what the host saw."""

    client: str
    generations: int
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mib: float = 0.0
    peaks_mib: dict = field(default_factory=dict)  # per process role: main, server, other
    at_peak_mib: dict = field(default_factory=dict)  # the same at the tree's peak
    peak_pss_mib: float = 0.0  # the same three in PSS (see TreeWatch)
    pss_peaks_mib: dict = field(default_factory=dict)
    at_pss_peak_mib: dict = field(default_factory=dict)
    peak_once_mib: float = 0.0  # the tree's pages each counted once (see TreeWatch)
    watch: TreeWatch | None = None
    exit_code: int = 0
    host: dict = field(default_factory=dict)
    phases: dict = field(default_factory=dict)  # phase -> process role -> CPU s
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    note: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the bare client (this file run with --bare URL N SLOTS) --------------------------


async def bare_client(url: str, n: int, slots: int, transport: str = "httpx") -> None:
    """``slots`` workers streaming /api/chat, each answer read to its last line;
    ``transport`` ``wire``: on evalflow's own transport under the httpx client."""
    limits = httpx.Limits(max_connections=slots, max_keepalive_connections=slots)
    light = None
    if transport == "wire":
        from evaluation.backends._http import shared_tls_context
        from evaluation.backends._wire import WireTransport

        light = WireTransport(limits, shared_tls_context())
    cases = -(-n // len(TEMPERATURES))
    work = iter(
        (f"Question {i}: what is {i} plus one?", t) for t in TEMPERATURES for i in range(cases)
    )
    left = [n]

    async def worker(client: httpx.AsyncClient) -> None:
        for prompt, temperature in work:
            if left[0] <= 0:
                return
            left[0] -= 1
            payload = {
                "model": MODEL,
                "messages": [{"role": "user", "content": prompt}],
                "stream": True,
                "options": {"temperature": temperature, "num_predict": 16},
            }
            parts = []
            async with client.stream("POST", f"{url}/api/chat", json=payload) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line.strip():
                        parts.append((json.loads(line).get("message") or {}).get("content", ""))

    async with httpx.AsyncClient(limits=limits, timeout=60, transport=light) as client:
        await asyncio.gather(*(worker(client) for _ in range(slots)))


def bare_processes(url: str, n: int, slots: int, transport: str, procs: int) -> None:
    """``procs`` bare clients at once, each its share of the slots and generations (the
    host's capacity where one process is short of CPU)."""
    base, odd = divmod(slots, procs)
    parts = [base + (p < odd) for p in range(procs)]
    children = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--bare",
                url,
                str(n * part // slots),
                str(part),
                transport,
                "1",
            ]
        )
        for part in parts
    ]
    if any(child.wait() for child in children):
        sys.exit(1)


# --- measuring a process tree ---------------------------------------------------------


class TreeWatch:
    """Samples a process tree's RSS (peak of the sum, each process role's own peak:
    ``main`` the command, ``server`` the embedded Prefect server, ``workers``, ``writer``,
    ``other``, and the roles' shares at the tree's peak, ``at_peak``) and CPU (sum of each
    process's last reading) every 0.2 s until stopped, and the same peaks in PSS every
    ``PSS_EVERY`` samples; ``trace``: a line per second (seconds, then MiB of main,
    server, workers, writer, other) written there as it stops. A process's role is its
    last known: the record writer is told from the lane workers only once it opens the
    run's database, after its imports (counted as a worker until then, the writer's ~60
    MiB of imports stood in the workers' peak).

    Why both sums: RSS counts every page a process maps, so a page that several of the
    tree's processes map (the interpreter, libpython, every extension's code: a spawned
    process shares no heap with its parent, only files) is counted once per process;
    with the embedded server, two lane workers and the record writer, ~90 MiB of a
    580 MiB sum at 100,000 generations (2026-11-29). PSS (proportional set size, from
    /proc/PID/smaps_rollup) splits each shared page among the processes that map it, so
    the tree's PSS sum counts each page once, less the shares of processes outside the
    tree that map it too: on a machine where other Python processes load the same
    libraries it reads low (by ~17 MiB at 100,000 generations here), and it moves as
    they come and go. So the tree's memory is its pages each counted once
    (``pages_once``: what each process holds alone, USS, plus each file's shared pages
    once), read every ``ONCE_EVERY`` samples from /proc/PID/smaps; the RSS sum is kept
    beside it (every earlier figure, and the issue's goal, were measured so) and the
    PSS sum (the kernel's own fair share)."""

    PSS_EVERY = 5  # smaps_rollup walks the process's page tables: once a second
    ONCE_EVERY = 25  # smaps, every mapping: every 5 s

    def __init__(self, pid: int, exclude: set[int], trace: Path | None = None) -> None:
        self.pid, self.exclude = pid, exclude
        self.peak_rss = 0
        self.peaks: dict[str, int] = {}
        self.at_peak: dict[str, int] = {}
        self._samples: list[tuple[int, dict[int, int]]] = []  # (second, RSS per process)
        self._pss_samples: list[dict[int, int]] = []  # PSS per process, every PSS_EVERY
        self.pss = TreePeak()
        self.peak_once = 0  # bytes: ``pages_once`` of the tree, its highest sample
        self.cpu: dict[int, float] = {}
        self.roles: dict[int, str] = {}
        self.series: list[tuple[float, float]] = []  # (time.time(), the tree's CPU s)
        self.pid_series: list[dict[int, float]] = []  # beside it: CPU s per process
        self._trace = trace.open("w") if trace else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _role(self, p: psutil.Process) -> str:
        if p.pid == self.pid:
            return "main"
        with contextlib.suppress(psutil.Error):
            command = ""
        with contextlib.suppress(psutil.Error):
            command = " ".join(p.cmdline())
        if "uvicorn" in command:
            return "server"
        if "multiprocessing" in command and "resource_tracker" not in command:
            return "workers"  # evalflow's lane workers and writer (spawned): see _writer
        return "other"

    def _writer(self, p: psutil.Process) -> bool:
        """Whether a spawned process is the record writer: it holds the run's SQLite
        file open (the lane workers hold none); asked until it does (it opens the file
        after its imports)."""
        with contextlib.suppress(psutil.Error):
            return any(f.path.endswith(".db") for f in p.open_files())
        return False

    def _run(self) -> None:
        started, ticks = time.monotonic(), 0
        while not self._stop.is_set():
            pss: dict[int, int] | None = {} if ticks % self.PSS_EVERY == 0 else None
            ticks += 1
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                procs = []
            # orphans re-parented to this subreaper (the embedded server after a kill)
            procs += [p for p in psutil.Process().children() if p.pid not in self.exclude]
            rss, sample = 0, {}
            for p in {p.pid: p for p in procs}.values():
                with contextlib.suppress(psutil.Error):
                    sample[p.pid] = mine = p.memory_info().rss
                    rss += mine
                    role = self.roles.setdefault(p.pid, self._role(p))
                    if role == "workers" and self._writer(p):
                        self.roles[p.pid] = "writer"
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system
                    if pss is not None:
                        pss[p.pid] = p.memory_full_info().pss
            if pss:
                self._pss_samples.append(pss)
            if ticks % self.ONCE_EVERY == 1:
                self.peak_once = max(self.peak_once, pages_once(procs))
            self.peak_rss = max(self.peak_rss, rss)
            self.series.append((time.time(), sum(self.cpu.values())))
            self.pid_series.append(dict(self.cpu))
            self._samples.append((int(time.monotonic() - started), sample))
            self._stop.wait(0.2)

    def cpu_between(self, start: float, end: float) -> float:
        """The tree's CPU seconds from ``start`` to ``end`` (``time.time()``), read
        from the samples nearest each (every 0.2 s)."""

        def at(moment: float) -> float:
            return min(self.series, key=lambda s: abs(s[0] - moment))[1]

        return at(end) - at(start) if self.series else 0.0

    def roles_between(self, start: float, end: float) -> dict[str, float]:
        """``cpu_between`` per process role (main, server, workers, writer, other), each
        process counted in the role it was last seen in (the writer is told apart once
        it opens the database)."""
        if not self.series:
            return {}

        def at(moment: float) -> dict[int, float]:
            times = [s[0] for s in self.series]
            return self.pid_series[min(range(len(times)), key=lambda i: abs(times[i] - moment))]

        first, last = at(start), at(end)
        by_role: dict[str, float] = {}
        for pid, cpu in last.items():
            role = self.roles.get(pid, "other")
            by_role[role] = by_role.get(role, 0.0) + cpu - first.get(pid, 0.0)
        return by_role

    def phases(self, marks: list[tuple[str, float]]) -> dict[str, dict[str, float]]:
        """CPU per process role in each phase: ``marks`` are (phase, when it starts)
        in order; the first starts with the watch, the last ends with its last sample."""
        if not self.series:
            return {}
        bounds = [*(when for _, when in marks[1:]), self.series[-1][0]]
        starts = [self.series[0][0], *(when for _, when in marks[1:])]
        return {
            phase: self.roles_between(start, end)
            for (phase, _), start, end in zip(marks, starts, bounds, strict=True)
        }

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        rss, traced = TreePeak(), -1
        for second, sample in self._samples:
            by_role = rss.add(sample, self.roles)
            if self._trace and second > traced:
                traced = second
                mib = "\t".join(f"{by_role[r] / 2**20:.0f}" for r in TreePeak.ROLES)
                self._trace.write(f"{second}\t{mib}\n")
        self.peak_rss, self.peaks, self.at_peak = rss.peak, rss.peaks, rss.at_peak
        for sample in self._pss_samples:
            self.pss.add(sample, self.roles)
        if self._trace:
            self._trace.close()


def pages_once(procs: list[psutil.Process]) -> int:
    """Bytes the processes hold, each resident page counted once: each process's own
    pages (USS) plus the pages it shares of each mapped file, counted once for the
    file (its most among them: they load the same libraries). Anonymous memory shared
    between them (a fork's copy-on-write, shared memory) would be left out: evalflow's
    processes are spawned and share none of note."""
    private, shared = 0, {}
    for p in {p.pid: p for p in procs}.values():
        with contextlib.suppress(psutil.Error, OSError):
            private += p.memory_full_info().uss
            for name, resident in _file_shared(p.pid).items():
                shared[name] = max(shared.get(name, 0), resident)
    return private + 1024 * sum(shared.values())


def _file_shared(pid: int) -> dict[str, int]:
    """KiB of each mapped file's pages that ``pid`` shares with other processes."""
    out: dict[str, int] = {}
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            key, _, rest = line.partition(" ")
            if not key.endswith(":"):  # a mapping's first line: range perms ... [path]
                fields = rest.split()
                name = fields[4] if len(fields) > 4 and fields[4].startswith("/") else None
            elif name is not None and key in ("Shared_Clean:", "Shared_Dirty:"):
                out[name] = out.get(name, 0) + int(rest.split()[0])
    return out


@dataclass
class TreePeak:
    """The peak of a process tree's summed memory over its samples: ``peak`` (bytes),
    each role's own peak (``peaks``) and the roles' shares at the tree's peak."""

    ROLES = ("main", "server", "workers", "writer", "other")
    peak: int = 0
    peaks: dict[str, int] = field(default_factory=dict)
    at_peak: dict[str, int] = field(default_factory=dict)

    def add(self, sample: dict[int, int], roles: dict[int, str]) -> dict[str, int]:
        """One sample (bytes per process id), each process in its role (else
        ``other``); returns the sample by role."""
        by_role = dict.fromkeys(self.ROLES, 0)
        for pid, mine in sample.items():
            by_role[roles.get(pid, "other")] += mine
        for role, mine in by_role.items():
            self.peaks[role] = max(self.peaks.get(role, 0), mine)
        if sum(by_role.values()) > self.peak:
            self.peak, self.at_peak = sum(by_role.values()), by_role
        return by_role


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _reap_orphans(exclude: set[int], timeout_s: float = 15.0) -> None:
    """Wait for orphans re-parented here (and reap them, so their CPU is counted)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with contextlib.suppress(ChildProcessError):
            while True:
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
        left = [p for p in psutil.Process().children() if p.pid not in exclude]
        if not left:
            return
        time.sleep(0.1)


def run_tree(
    client: str,
    n: int,
    command: list[str],
    env: dict[str, str],
    cwd: Path,
    log: Path,
    standin: subprocess.Popen,
    *,
    stop_when: callable | None = None,
    during: Profiler | None = None,
) -> Figures:
    """Run ``command`` as a new process group; its tree's wall, CPU and peak RSS.
    ``stop_when()`` true: the group is killed with SIGKILL (polled every 0.2 s);
    ``during``: polled as often with the tree's root (``--profile``)."""
    exclude = {standin.pid}
    cpu0, start = _children_cpu(), time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        exclude.add(proc.pid)
        watch = TreeWatch(proc.pid, {standin.pid}, log.with_suffix(".rss.tsv"))
        killed = False
        try:
            while proc.poll() is None:
                if stop_when is not None and not killed and stop_when():
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    killed = True
                if during is not None:
                    during.poll(proc.pid, watch.exclude)
                time.sleep(0.2)
        except BaseException:  # stopped (SIGTERM, Ctrl-C): its tree, a session apart, too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise
    if during is not None:
        during.finish()
    wall = time.perf_counter() - start
    _reap_orphans({standin.pid})
    watch.stop()
    cpu = _children_cpu() - cpu0 - (during.cpu_s if during is not None else 0.0)
    figures = Figures(client, n, wall, max(cpu, sum(watch.cpu.values())), watch.peak_rss / 2**20)
    figures.peaks_mib = {role: rss / 2**20 for role, rss in watch.peaks.items() if rss}
    figures.at_peak_mib = {role: rss / 2**20 for role, rss in watch.at_peak.items() if rss}
    figures.peak_pss_mib = watch.pss.peak / 2**20
    figures.pss_peaks_mib = {role: b / 2**20 for role, b in watch.pss.peaks.items() if b}
    figures.at_pss_peak_mib = {role: b / 2**20 for role, b in watch.pss.at_peak.items() if b}
    figures.peak_once_mib = watch.peak_once / 2**20
    figures.exit_code = proc.returncode
    figures.load = os.getloadavg()
    figures.watch = watch
    return figures


PROFILE: list[Path | None] = [None]  # --profile DIR
PROFILE_S = [4.0]


class Profiler:
    """``--profile``: once the host has served a quarter of a run's generations, py-spy
    records each process of the run's tree (on-CPU samples, not pausing it) into
    PROFILE/CLIENT-PID-ROLE.txt (collapsed stacks)."""

    def __init__(self, client: str, n: int, url: str) -> None:
        self.client, self.n, self.url = client.replace(":", "_"), n, url
        self.spies: list[subprocess.Popen] = []
        self.cpu_s = 0.0  # py-spy's own, taken out of the tree's
        self.started = False
        self.binary = os.environ.get("PY_SPY") or shutil.which("py-spy")

    def poll(self, root: int, exclude: set[int]) -> None:
        """``exclude``: the tree watch's, py-spy's own processes added."""
        if self.started or not self.binary:
            return
        served = httpx.get(f"{self.url}/_stats", timeout=5).json().get("requests", 0)
        if served < self.n // 4:
            return
        self.started = True
        try:
            procs = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
        except psutil.Error:
            return
        PROFILE[0].mkdir(parents=True, exist_ok=True)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                command = " ".join(p.cmdline())
                role = "main" if p.pid == root else "server" if "uvicorn" in command else "child"
                out = PROFILE[0] / f"{self.client}-{self.n}-{p.pid}-{role}.txt"
                spy = [self.binary, "record", "--pid", str(p.pid), "--rate", "200"]
                spy += ["--duration", f"{PROFILE_S[0]:g}", "--nonblocking", "--gil"]
                spy += ["--format", "raw"]
                spy += ["--output", str(out)]
                log = out.with_suffix(".log").open("w")
                self.spies.append(subprocess.Popen(spy, stdout=log, stderr=subprocess.STDOUT))
                exclude.add(self.spies[-1].pid)

    def finish(self) -> None:
        """Wait for each py-spy, counting its CPU (reaped here, so not in the tree's)."""
        deadline = time.monotonic() + PROFILE_S[0] + 10
        for spy in self.spies:
            while spy.returncode is None and time.monotonic() < deadline:
                pid, status, usage = os.wait4(spy.pid, os.WNOHANG)
                if pid:
                    spy.returncode = os.waitstatus_to_exitcode(status)
                    self.cpu_s += usage.ru_utime + usage.ru_stime
                else:
                    time.sleep(0.05)


# --- the stand-in's view ------------------------------------------------------------------


def host_figures(url: str) -> dict:
    stats = httpx.get(f"{url}/_stats?spans=1", timeout=60).json()
    spans = sorted(stats.pop("spans"))
    if not spans:
        return stats
    first, last = spans[0][0], max(e for _, e in spans)
    busy = max(last - first, 1e-9)
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    open_, full, at = 0, 0.0, first
    for t, step in events:
        if open_ >= stats["slots"]:
            full += t - at
        open_, at = open_ + step, t
    return stats | {
        "busy_s": busy,
        "rate": len(spans) / busy,
        "mean_open": sum(e - s for s, e in spans) / busy,
        "full_share": full / busy,
    }


def reset_host(url: str) -> None:
    httpx.post(f"{url}/_stats", timeout=10)


def start_standin(
    port: int, slots: int, latency_ms: float, kind: str, queue: int = 0
) -> subprocess.Popen:
    """The stand-in host; ``queue``: requests it queues beyond its slots (at least 512
    and 4 × ``slots``) before it answers 503."""
    module = "tests.support.standin_fast" if kind == "fast" else "tests.support.standin_process"
    command = [sys.executable, "-m", module, "--port", str(port)]
    command += ["--slots", str(slots), "--latency-ms", str(latency_ms), "--models", MODEL]
    command += ["--max-queue", str(max(512, 4 * slots, queue))]
    proc = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/version", timeout=0.5)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the stand-in did not start")


# --- the clients ----------------------------------------------------------------------


def write_inputs(folder: Path, n: int, port: int, slots: int) -> Path:
    cases = -(-n // len(TEMPERATURES))
    rows = [
        {"id": f"q{i}", "input": f"Question {i}: what is {i} plus one?", "references": [str(i + 1)]}
        for i in range(cases)
    ]
    (folder / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "bench.suite.yaml").write_text(
        "name: bench\nversion: '1'\ntask_type: qa\ndefault_metrics: [exact_match]\n"
    )
    spec = {
        "name": "bench-goal",
        "suite": str(folder / "bench.jsonl"),
        "models": [MODEL],
        "grid": {"temperature": TEMPERATURES, "num_predict": [16]},
        "hosts": [{"name": "bench", "url": f"http://127.0.0.1:{port}", "slots": slots}],
    }
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    return folder / "spec.yaml"


def with_python_path(code: Path) -> str:
    """``code`` first, then whatever PYTHONPATH already holds (packages installed with
    ``pip --target``, as on a machine where they are carried in)."""
    return os.pathsep.join(p for p in (str(code), os.environ.get("PYTHONPATH", "")) if p)


def compile_checkouts(*checkouts: Path | None) -> str:
    """Each checkout's modules compiled to bytecode (``__pycache__``, as a user's
    install has them) before anything is measured: where PYTHONDONTWRITEBYTECODE is set
    (these machines), every evalflow process compiled evalflow's modules from source
    at each start, ~1.25 s of CPU a run's command that no user pays. Returns a line
    saying so."""
    skip = re.compile(r"[/\\]\.")  # .venv, .git and the like
    said = []
    for code in dict.fromkeys(c.resolve() for c in checkouts if c is not None):
        sources = [p for p in code.rglob("*.py") if not skip.search(f"/{p.relative_to(code)}")]
        if not compileall.compile_dir(code, rx=skip, quiet=1, workers=1):
            raise SystemExit(f"{code}: compileall failed")
        said.append(f"{code} ({len(sources)} .py files)")
    flag = (
        " (PYTHONDONTWRITEBYTECODE is set here)"
        if os.environ.get("PYTHONDONTWRITEBYTECODE")
        else ""
    )
    return f"bytecode: compiled first, as a user's install has it{flag}: {'; '.join(said)}"


def evalflow_env(home: Path, code: Path | None = None) -> dict[str, str]:
    env = os.environ | {
        "PREFECT_HOME": str(home / "prefect"),
        "EVALFLOW_HOME": str(home / "evalflow"),
        "EVALFLOW_SLOT_LOCK_DIR": str(home / "slot-locks"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": with_python_path(code or CODE[0]),
    }
    env.pop("PREFECT_API_URL", None)
    return env


def evalflow_command(
    db: Path | str, spec: Path, experiment: str, workers: int | None = None
) -> list[str]:
    """``run`` of ``spec`` into ``db``: a SQLite file, or a database URL; ``--workers``
    only where ``workers`` is given (None: ``run``'s default)."""
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    command = [sys.executable, "-m", "flows.cli", "--database", url]
    command += ["run", str(spec), "--experiment", experiment]
    return command + (["--workers", str(workers)] if workers is not None else [])


def stored(db: Path | str) -> int:
    try:
        return query_one(db, "select count(*) from generations where status = 'ok'")[0]
    except Exception:  # not created yet: sqlite3's and psycopg2's errors alike
        return 0


def query_one(db: Path | str, sql: str) -> tuple:
    """The first row of ``sql`` on ``db``: a SQLite file (read only), or a PostgreSQL URL."""
    if isinstance(db, str):
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        engine = create_engine(db, poolclass=NullPool)
        try:
            with engine.connect() as c:
                return tuple(c.exec_driver_sql(sql).one())
        finally:
            engine.dispose()
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as c:
        return c.execute(sql).fetchone()


@contextlib.contextmanager
def killed_database(folder: Path, server: str | None):
    """Where ``--kill-at``'s run stores: a SQLite file in ``folder``, or a database of
    its own on the PostgreSQL ``server`` (a URL; created here, dropped afterwards)."""
    if server is None:
        yield folder / "killed.db"
        return
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(server)
    name = f"goal_killed_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def run_client(name: str, n: int, folder: Path, spec: Path, url: str, slots: int, standin):
    reset_host(url)
    log = folder / f"{name}-{n}.log"
    if name.startswith("bare"):
        kind, _, procs = name.partition(":")
        transport = "wire" if kind == "bare-wire" else "httpx"
        command = [sys.executable, __file__, "--bare", url, str(n), str(slots), transport]
        env = os.environ | {"PYTHONPATH": with_python_path(REPO)}
        figures = run_tree(name, n, [*command, procs or "1"], env, REPO, log, standin)
    elif name.startswith(("evalflow", "before")):
        code = BEFORE[0] if name.startswith("before") else CODE[0]
        home = folder / "home"
        count = name.partition(":")[2]
        workers = int(count) if count else None  # None: run's default
        experiment = f"goal-{n}-{time.time():.0f}"
        tag = f"{name.partition(':')[0]}-w{count or 'default'}-{n}"
        log = folder / f"{tag}.log"
        command = evalflow_command(folder / f"results-{tag}.db", spec, experiment, workers)
        during = Profiler(name, n, url) if PROFILE[0] else None
        figures = run_tree(
            name, n, command, evalflow_env(home, code), code, log, standin, during=during
        )
    else:
        tasks = "".join(
            f"\n@task\ndef bench_t{int(t * 10)}():\n    return _bench({t})\n" for t in TEMPERATURES
        )
        (folder / "inspect_bench.py").write_text(
            INSPECT_TASKS.format(suite=folder / "bench.jsonl", tasks=tasks)
        )
        env = os.environ | {
            "STANDIN_BASE_URL": f"{url}/v1",
            "STANDIN_API_KEY": "unused",
            "INSPECT_LOG_DIR": str(folder / f"inspect-logs-{n}"),
        }
        command = [sys.executable, "-m", "inspect_ai", "eval", "inspect_bench.py"]
        command += ["--model", f"openai-api/standin/{MODEL}", "--max-connections", str(slots)]
        command += ["--max-tasks", str(len(TEMPERATURES)), "--display", "plain"]
        figures = run_tree(name, n, command, env, folder, log, standin)
    figures.host = host_figures(url)
    if PROFILE[0]:
        spans = httpx.get(f"{url}/_stats?spans=1", timeout=60).json()["spans"]
        PROFILE[0].mkdir(parents=True, exist_ok=True)
        (PROFILE[0] / f"spans-{name.replace(':', '_')}-{n}.json").write_text(json.dumps(spans))
    if "busy_s" in figures.host and figures.watch is not None:
        span = (figures.host["first_started"], figures.host["last_ended"])
        figures.host["phase_cpu_s"] = figures.watch.cpu_between(*span)
        figures.host["phase_cpu_by_role"] = figures.watch.roles_between(*span)
        if name.startswith(("evalflow", "before")):
            figures.phases = figures.watch.phases(_phase_marks(log, span))
    if figures.exit_code:
        figures.note = f"exit {figures.exit_code}, see {log}"
    return figures


# Prefect's console lines: "10:41:23.456 | INFO    | Flow run 'x' - goal-1: scoring…"
_STEP = re.compile(
    r"^(\d\d):(\d\d):(\d\d\.\d+) \|.* - [^ ]+: (scoring|comparing configs|writing report)…"
)
_PHASES = {"scoring": "scoring", "comparing configs": "compare", "writing report": "report"}


def _phase_marks(log: Path, span: tuple[float, float]) -> list[tuple[str, float]]:
    """(phase, when it starts) of an evalflow run: start, generation (the host's busy
    span), its end until scoring, then the steps its log announces (Prefect's local
    times, on the day the span began)."""
    marks = [("start", 0.0), ("generation", span[0]), ("generation's end", span[1])]
    day = time.mktime((*time.localtime(span[0])[:3], 0, 0, 0, 0, 0, -1))
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if (step := _STEP.match(line)) is not None:
                h, m, sec, what = step.groups()
                at = day + 3600 * int(h) + 60 * int(m) + float(sec)
                marks.append((_PHASES[what], at + 86400 * (at < span[0] - 3600)))
    return marks


def kill_and_resume(
    n: int,
    kill_at: int,
    folder: Path,
    spec: Path,
    url: str,
    standin,
    workers: int | None = None,
    server: str | None = None,
) -> None:
    """Kill -9 an evalflow run (its process group: the workers too) once ``kill_at``
    generations are stored, then resume it; into SQLite, or a fresh database on the
    PostgreSQL ``server``."""
    with killed_database(folder, server) as db:
        _kill_and_resume(n, kill_at, folder, spec, url, standin, workers, db)


def _kill_and_resume(
    n: int, kill_at: int, folder: Path, spec: Path, url: str, standin, workers: int | None, db
) -> None:
    home, name = folder / "home-kill", "goal-killed"
    reset_host(url)
    first = run_tree(
        "evalflow killed",
        n,
        evalflow_command(db, spec, name, workers),
        evalflow_env(home),
        CODE[0],
        folder / "killed.log",
        standin,
        stop_when=lambda: stored(db) >= kill_at,
    )
    at_kill = stored(db)
    sent_before = host_figures(url).get("requests", 0)
    reset_host(url)
    resumed = run_tree(
        "evalflow resumed",
        n,
        evalflow_command(db, spec, name, workers),
        evalflow_env(home),
        CODE[0],
        folder / "resumed.log",
        standin,
    )
    host = host_figures(url)
    key = "count(distinct config_hash || '/' || case_uid || '/' || sample_index)"
    rows, distinct = query_one(db, f"select count(*), {key} from generations")
    runs = query_one(db, f"select count(*), {key} from case_runs")
    stages = query_one(db, f"select count(*), {key} from stages")
    load = ", ".join(f"{x:.1f}" for x in resumed.load)
    print(f"\nkill -9 at {kill_at:,} of {n:,} (load {load}):")
    print(f"  killed run: exit {first.exit_code}, {first.wall_s:.0f} s, {at_kill:,} stored,")
    print(f"    {first.cpu_s:.1f} s CPU, peak RSS {first.peak_rss_mib:.0f} MiB", _roles(first))
    print(f"    peak PSS {first.peak_pss_mib:.0f} MiB", _roles(first, pss=True), end=", ")
    print(f"pages once {first.peak_once_mib:.0f} MiB")
    print(f"    requests sent {sent_before:,} ({sent_before - at_kill} in flight or unstored)")
    print(f"  resumed run: exit {resumed.exit_code}, {resumed.wall_s:.0f} s wall,")
    print(f"    {resumed.cpu_s:.1f} s CPU, peak RSS {resumed.peak_rss_mib:.0f} MiB", end=" ")
    print(_roles(resumed))
    print(f"    peak PSS {resumed.peak_pss_mib:.0f} MiB", _roles(resumed, pss=True), end=", ")
    print(f"pages once {resumed.peak_once_mib:.0f} MiB")
    print(f"    requests sent {host.get('requests', 0):,}, work left {n - at_kill:,}")
    print(f"    redone (sent - left): {host.get('requests', 0) - (n - at_kill)}")
    print(f"  rows {rows:,}, distinct keys {distinct:,} (of {n:,})", end="; ")
    print(f"case runs {runs[0]:,} ({runs[1]:,} keys), stages {stages[0]:,} ({stages[1]:,} keys)")
    print(f"  database: {'PostgreSQL' if isinstance(db, str) else 'SQLite'}")


def _roles(figures: Figures, *, pss: bool = False) -> str:
    """Each process role's own peak, e.g. ``(main 310, server 230)``."""
    peaks = figures.pss_peaks_mib if pss else figures.peaks_mib
    return "(" + ", ".join(f"{r} {m:.0f}" for r, m in peaks.items()) + ")"


def _phase_table(r: Figures) -> str:
    """An evalflow run's CPU in ms per generation, by phase (rows) and process role
    (columns); "unsampled": the tree's CPU (rusage) less the samples' (processes that
    ended between two samples)."""
    roles = [
        x
        for x in ("main", "server", "workers", "writer", "other")
        if any(p.get(x) for p in r.phases.values())
    ]
    per = 1000 / max(r.generations, 1)
    lines = [f"  {r.client}: CPU ms/gen by phase | " + " | ".join([*roles, "all"])]
    sampled = 0.0
    for phase, by_role in r.phases.items():
        sampled += sum(by_role.values())
        cells = [f"{per * by_role.get(x, 0.0):.3f}" for x in roles]
        lines.append(f"    {phase} | " + " | ".join([*cells, f"{per * sum(by_role.values()):.3f}"]))
    lines.append(f"    unsampled | {per * (r.cpu_s - sampled):.3f}")
    return "\n".join(lines)


def report(results: list[Figures], slots: int, latency_ms: float) -> None:
    by_name = {r.client: r for r in results}
    bars = [r for r in results if r.client.startswith("bare")]  # bare-wire:K the last
    bare = by_name.get("bare-wire") or by_name.get("bare") or (bars[0] if bars else None)
    capacity = slots / (latency_ms / 1000)
    print(f"\n{slots} slots x {latency_ms:g} ms (capacity {capacity:,.0f}/s)", end="")
    print(f"; x bare, vs bare: against {bare.client}" if bare else "")
    head = ("client", "gens", "wall s", "CPU s", "CPU ms/gen", "x bare", "phase ms/gen")
    head += ("rate/s", "vs bare")
    head += ("max open", "mean open", "full", "peak MiB", "PSS", "pages once", "host ms/req")
    head += ("load 1m",)
    print(" | ".join(head))
    for r in results:
        h = r.host
        cpu_ms = 1000 * r.cpu_s / max(r.generations, 1)
        bare_ms = 1000 * bare.cpu_s / max(bare.generations, 1) if bare else None
        bare_rate = bare.host.get("rate") if bare else None
        row = [
            r.client,
            f"{r.generations:,}",
            f"{r.wall_s:.1f}",
            f"{r.cpu_s:.1f}",
            f"{cpu_ms:.2f}",
            f"{cpu_ms / bare_ms:.2f}" if bare_ms else "-",
            f"{1000 * h.get('phase_cpu_s', 0) / max(h.get('requests', 0), 1):.2f}",
            f"{h.get('rate', 0):.0f}",
            f"{h.get('rate', 0) / bare_rate:.2f}" if bare_rate else "-",
            f"{h.get('max_in_flight', 0)}/{slots}",
            f"{h.get('mean_open', 0):.1f}",
            f"{h.get('full_share', 0):.2f}",
            f"{r.peak_rss_mib:.0f}",
            f"{r.peak_pss_mib:.0f}",
            f"{r.peak_once_mib:.0f}",
            f"{1000 * h.get('cpu_s', 0) / max(h.get('requests', 0), 1):.3f}",
            f"{r.load[0]:.1f}",
        ]
        print(" | ".join(row) + (f"   ({r.note})" if r.note else ""))
        if len(by_role := h.get("phase_cpu_by_role", {})) > 1:
            served = max(h.get("requests", 0), 1)
            split = ", ".join(f"{role} {1000 * s / served:.2f}" for role, s in by_role.items())
            print(f"  {r.client}: phase ms/gen per process role ({split})")
        if r.phases:
            print(_phase_table(r))
        if len(r.peaks_mib) > 1:
            peaks = ", ".join(f"{role} {mib:.0f}" for role, mib in r.peaks_mib.items())
            print(f"  {r.client}: peak MiB per process ({peaks}), RSS trace beside its log")
            shares = ", ".join(f"{role} {mib:.0f}" for role, mib in r.at_peak_mib.items())
            print(f"  {r.client}: the tree's peak, {r.peak_rss_mib:.0f} MiB, was {shares}")
            shares = ", ".join(f"{role} {mib:.0f}" for role, mib in r.at_pss_peak_mib.items())
            print(f"  {r.client}: its peak in PSS, {r.peak_pss_mib:.0f} MiB, was {shares}")
        if h.get("requests", r.generations) != r.generations:
            print(f"  {r.client}: the host served {h.get('requests')} requests")
    bars = [r for r in bars if r.host.get("rate")]
    if len(bars) > 1:
        for r in results:
            if not r.client.startswith("bare") and r.host.get("rate"):
                rate = r.host["rate"]
                ratios = ", ".join(f"{rate / b.host['rate']:.2f} of {b.client}" for b in bars)
                print(f"  {r.client}: rate {ratios}")


def run_clients(
    clients: list[str],
    run_one: Callable[[str], Figures],
    show: Callable[[list[Figures]], None],
) -> None:
    """Each client in turn, a line as each ends; ``show`` gets the figures of those
    measured, also when the run is stopped part way (``timeout``'s SIGTERM: SystemExit)."""
    results: list[Figures] = []
    try:
        for client in clients:
            results.append(run_one(client))
            print(f"  {client} {results[-1].generations}: {results[-1].wall_s:.1f} s", flush=True)
    finally:
        if len(results) < len(clients):
            print(f"  stopped: {len(results)} of {len(clients)} clients measured", flush=True)
        if results:
            show(results)


def _terminated(signum: int, frame: object) -> None:
    signal.signal(signum, signal.SIG_IGN)  # `timeout` sends it twice: to us, to our group
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        epilog="Columns: CPU ms/gen = the client's whole process tree per generation, all "
        "in; x bare = that against the bare client's; phase ms/gen = the same over the "
        "generation phase only; rate/s = the host's answers per second over its busy span, "
        "vs bare = against the bare client's rate; max open / mean open = requests open at "
        "the host at most / on average, against its slots; full = share of the busy span "
        "with every slot busy; host ms/req = the stand-in's own CPU per answer. "
        "Guide: docs/throughput.md.",
    )
    parser.add_argument(
        "--generations", type=int, nargs="+", default=[4000], help="sizes to run (4000)"
    )
    parser.add_argument("--slots", type=int, default=64, help="the host's slots (64)")
    parser.add_argument(
        "--latency-ms", type=float, default=20.0, help="each request's time at the host (20)"
    )
    parser.add_argument(
        "--clients",
        default="bare,bare-wire,evalflow,inspect",
        help="comma-separated, run one after the other (bare,bare-wire,evalflow,inspect); "
        "evalflow runs evalflow with no --workers (its default), evalflow:N with "
        "--workers N, before[:N] the same from --before, "
        "bare-wire:K the bare loop in K processes",
    )
    parser.add_argument(
        "--standin", choices=("fast", "asgi"), default="fast", help="the stand-in host (fast)"
    )
    parser.add_argument("--evalflow-code", type=Path, help="run evalflow from this checkout")
    parser.add_argument(
        "--before",
        type=Path,
        help="clients before:N run evalflow --workers N from this checkout (before/after "
        "interleaved in one run)",
    )
    parser.add_argument("--kill-at", type=int, help="kill -9 an evalflow run at this count")
    parser.add_argument(
        "--kill-workers",
        type=int,
        help="--kill-at's run with --workers N (default: none given, run's default)",
    )
    parser.add_argument(
        "--kill-database",
        metavar="URL",
        help="--kill-at's run stores into a database of its own on this PostgreSQL server "
        "(e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/test; created, then dropped), "
        "not SQLite",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy (on PATH or $PY_SPY) records every process of each evalflow run's "
        "tree for --profile-s seconds once the host has served a quarter of the "
        "generations, and each client's host spans are written there (spans-CLIENT.json)",
    )
    parser.add_argument("--profile-s", type=float, default=4.0, help="py-spy's seconds (4)")
    parser.add_argument("--bare", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        url, n, slots, transport, procs = args.bare
        if int(procs) > 1:
            bare_processes(url, int(n), int(slots), transport, int(procs))
        else:
            asyncio.run(bare_client(url, int(n), int(slots), transport))
        return
    PROFILE[0] = args.profile
    PROFILE_S[0] = args.profile_s
    signal.signal(signal.SIGTERM, _terminated)  # the figures so far are printed

    if sys.platform.startswith("linux"):  # orphans (the embedded server) come back here
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)
    CODE[0] = (args.evalflow_code or REPO).resolve()
    BEFORE[0] = args.before.resolve() if args.before else None
    clients = args.clients.split(",")
    if "inspect" in clients and importlib.util.find_spec("inspect_ai") is None:
        print("inspect: skipped, inspect_ai is not installed (pip install inspect-ai)")
        clients.remove("inspect")
    folder = Path(tempfile.mkdtemp(prefix="evalflow-goal-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    standin = start_standin(port, args.slots, args.latency_ms, args.standin)
    print(f"work folder (logs): {folder}; uptime: {os.getloadavg()}")
    print(compile_checkouts(CODE[0], BEFORE[0], REPO), flush=True)
    try:
        for n in args.generations:
            spec = write_inputs(folder, n, port, args.slots)
            if args.kill_at:
                kill_and_resume(
                    n,
                    args.kill_at,
                    folder,
                    spec,
                    url,
                    standin,
                    args.kill_workers,
                    args.kill_database,
                )
                continue
            run_clients(
                clients,
                functools.partial(
                    run_client,
                    n=n,
                    folder=folder,
                    spec=spec,
                    url=url,
                    slots=args.slots,
                    standin=standin,
                ),
                lambda results: report(results, args.slots, args.latency_ms),
            )
    finally:
        standin.terminate()
        standin.wait()


if __name__ == "__main__":
    main()
