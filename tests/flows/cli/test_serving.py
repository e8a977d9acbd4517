"""Serving a local page (view, review, metrics): pages answer over a real socket, and
the server loads neither websockets nor a lifespan (no served app uses them: issue 46's
start-up)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import os, sys, threading, urllib.request
from flows.cli._serving import bind, serve

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"page"})

sock = bind("127.0.0.1", 0)
port = sock.getsockname()[1]
threading.Thread(target=serve, args=(app, sock), daemon=True).start()
for _ in range(200):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            body = answer.read().decode()
        break
    except OSError:
        threading.Event().wait(0.05)
loaded = [m for m in ("websockets", "uvicorn.lifespan.on") if m in sys.modules]
print(body, loaded, flush=True)
os._exit(0)
"""


def test_a_page_is_served_without_websockets_or_lifespan():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "page []", done.stdout + done.stderr
