"""Screenshots of `evalflow view` for the README, taken in headless Chromium from a real
run of the bundled demo: run `evalflow run benchmarks/sweeps/demo-simulated.yaml` first,
then `python docs/screenshots/capture_view.py` (the results database of
$EVALFLOW_DATABASE_URL or ~/.evalflow, as every command reads it). Needs the dev extra
(Playwright) and Debian's chromium."""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from evaluation.review.app import LOOPBACK_HOSTS
from evaluation.settings import database_url
from evaluation.storage.db import make_engine
from evaluation.view.app import create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.asgi_server import serving

HERE = Path(__file__).resolve().parent
EXPERIMENT = "demo-simulated"


def main() -> None:
    engine = make_engine(database_url(None), create=False)
    shots = {
        "view-summary.png": ("/summary", None),
        "view-generations.png": ("?q=paris", None),
        "view-compare.png": ("/compare?a={a}&b={b}&metric=exact_match&sort=%7Cdiff%7C", None),
        "view-matrix.png": ("/matrix?x=temperature&y=model", None),
        "view-summary-dark.png": ("/summary", "dark"),
    }
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import experiment_configs, get_experiment

    with session_scope(engine) as session:
        hashes = list(experiment_configs(session, get_experiment(session, EXPERIMENT).id)["hash"])
    with serving(create_app(engine, allowed_hosts=LOOPBACK_HOSTS)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for name, (path, scheme) in shots.items():
            context = browser.new_context(
                viewport={"width": 1360, "height": 900}, color_scheme=scheme or "light"
            )
            page = context.new_page()
            page.goto(f"{url}/e/{EXPERIMENT}" + path.format(a=hashes[-1], b=hashes[0]))
            page.screenshot(path=str(HERE / name), full_page=False)
            context.close()
            print(HERE / name)
        browser.close()


if __name__ == "__main__":
    main()
