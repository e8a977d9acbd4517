"""Screenshots of `evalflow view` for the README, taken in headless Chromium from a real
`evalflow view` serving real runs of the two bundled simulated sweeps (every page says
SIMULATED). Run them first, then this script, with the same results database
($EVALFLOW_DATABASE_URL or ~/.evalflow, as every command reads it):

    evalflow run benchmarks/sweeps/demo-simulated.yaml
    evalflow run benchmarks/sweeps/rag-presets.yaml
    python docs/screenshots/capture_view.py

Needs the dev extra (Playwright) and Debian's chromium."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from sqlalchemy import text

from evaluation.settings import database_url
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import experiment_configs, get_experiment

HERE = Path(__file__).resolve().parent
DEMO, RAG = "demo-simulated", "rag-presets"
CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serving(port: int) -> subprocess.Popen[bytes]:
    """`evalflow view` as a user starts it, on ``port``; returns once it answers."""
    evalflow = shutil.which("evalflow") or str(Path(sys.executable).with_name("evalflow"))
    server = subprocess.Popen([evalflow, "view", DEMO, "--port", str(port)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("evalflow view did not answer within 60 s")


def _transcript_generation(engine) -> int:
    """A rag-presets generation whose answer had retrieved chunks, preferring one whose
    case made the run's shared embedding call (the transcript then shows every kind)."""
    with session_scope(engine) as session:
        experiment_id = get_experiment(session, RAG).id
        row = session.exec(
            text(
                "SELECT g.id, MAX(CASE WHEN s.shared THEN 1 ELSE 0 END) AS made_shared, "
                "MAX(CASE WHEN s.retrieved IS NOT NULL THEN 1 ELSE 0 END) AS retrieved "
                "FROM generations g JOIN stages s ON s.experiment_id = g.experiment_id "
                "AND s.config_hash = g.config_hash AND s.case_uid = g.case_uid "
                "AND s.sample_index = g.sample_index WHERE g.experiment_id = :e "
                "GROUP BY g.id HAVING MAX(CASE WHEN s.retrieved IS NOT NULL THEN 1 ELSE 0 END) "
                "= 1 ORDER BY made_shared DESC, g.id LIMIT 1"
            ),
            params={"e": experiment_id},
        ).first()
    if row is None:
        raise SystemExit(f"no {RAG} generation with stored calls: run {RAG} with this version")
    return int(row[0])


def main() -> None:
    engine = make_engine(database_url(None), create=False)
    with session_scope(engine) as session:
        hashes = list(experiment_configs(session, get_experiment(session, DEMO).id)["hash"])
    generation = _transcript_generation(engine)
    demo, rag = f"/e/{DEMO}", f"/e/{RAG}"
    # name: (path, colour scheme, the one section shown (None: the whole window), height)
    shots = {
        "view-summary.png": (f"{demo}/summary", "light", None, 900),
        "view-generations.png": (f"{demo}?q=paris", "light", None, 900),
        "view-transcript.png": (f"{rag}/g/{generation}", "light", "#transcript", 900),
        "view-compare.png": (
            f"{demo}/compare?a={hashes[-1]}&b={hashes[0]}&metric=exact_match&sort=%7Cdiff%7C",
            "light",
            None,
            900,
        ),
        "view-matrix.png": (f"{demo}/matrix", "light", "#flips", 900),
        "view-heatmap.png": (f"{rag}/grid?x=retrieve_k&y=chunk_size", "light", "#grid", 900),
        "view-summary-dark.png": (f"{demo}/summary", "dark", None, 900),
    }
    port = _free_port()
    server = _serving(port)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for name, (path, scheme, element, height) in shots.items():
                context = browser.new_context(
                    viewport={"width": 1360, "height": height}, color_scheme=scheme
                )
                page: Page = context.new_page()
                page.goto(f"http://127.0.0.1:{port}{path}")
                if element is not None:  # that section under the header and SIMULATED banner
                    page.evaluate(
                        "sel => document.querySelectorAll('main > *:not(.banner)')"
                        ".forEach(e => { if (!e.matches(sel)) e.style.display = 'none'; })",
                        element,
                    )
                page.screenshot(path=str(HERE / name), full_page=element is not None)
                context.close()
                print(HERE / name)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
