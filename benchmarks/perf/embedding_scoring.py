"""Embedding for ``semantic_similarity`` (and the pipeline suites' generator): how fast
the SIMULATED vectors are made, how long the Embedder takes to embed N distinct texts on
an in-process stand-in Ollama (``--slots`` slots, ``--latency-ms`` per request, batches
of ``--batch``), that a second pass over the same texts asks nothing (cache), and how
long generating the bundled long documents takes.

    .venv/bin/python benchmarks/perf/embedding_scoring.py --texts 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from evaluation.backends._simulated_embed import simulated_embedding
from evaluation.documents.bundled import bundled_files
from evaluation.embeddings import Embedder
from tests.support.standin_ollama import StandInConfig, running_standin

MODEL = "nomic-embed-text"


def texts(count: int) -> list[str]:
    return [
        f"Output {i}: group revenue rose to {i % 97}.{i % 9} million euros in {2000 + i % 25}, "
        f"and the board appointed a new chief financial officer in Leeds (case {i})."
        for i in range(count)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    sample = texts(args.texts)
    started = time.perf_counter()
    for text in sample:
        simulated_embedding(MODEL, text)
    elapsed = time.perf_counter() - started
    print(f"simulated vectors: {args.texts / elapsed:,.0f} texts/s ({elapsed:.2f} s)")

    config = StandInConfig(models=(MODEL,), slots=args.slots, embed_latency_ms=args.latency_ms)
    with running_standin(config) as server:
        embedder = Embedder([server.host()], batch_size=args.batch)
        started = time.perf_counter()
        embedder.vectors(MODEL, sample)
        first = time.perf_counter() - started
        requests = server.stats.embed_requests
        started = time.perf_counter()
        embedder.vectors(MODEL, sample)
        second = time.perf_counter() - started
        ideal = -(-args.texts // args.batch) * args.latency_ms / 1e3 / args.slots
        print(
            f"stand-in ({args.slots} slots, {args.latency_ms:g} ms/request, batches of "
            f"{args.batch}): {args.texts} texts in {first:.2f} s ({requests} requests; "
            f"ideal {ideal:.2f} s); again, cached: {second * 1e3:.1f} ms, "
            f"{server.stats.embed_requests - requests} requests; max in flight "
            f"{server.stats.max_in_flight}"
        )

    started = time.perf_counter()
    files = bundled_files()
    elapsed = time.perf_counter() - started
    size = sum(len(content.encode()) for content in files.values())
    print(f"bundled pipeline suites generated in {elapsed:.2f} s ({size:,} bytes written)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
