"""A static copy of an experiment's view: a folder of HTML files (and the view's CSS and
script) that opens from disk without evalflow, to attach or publish. The pages are the
view app's own, fetched in-process; links between exported pages are rewritten to
files, and what needs the server (filter forms, other queries) is left out: its links
become plain text marked as needing the running view, never a link that silently lands
on another page. The side-by-side pages the flip matrix links to (every ordered pair of
configs, all cases on one page) are exported up to ``MAX_PAIR_CONFIGS`` configs; above
that, n × (n − 1) pages would outweigh the rest, and the matrix says so."""

from __future__ import annotations

import asyncio
import html as html_module
import re
import shutil
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from evaluation.storage.dropped import OWN_CONFIGS
from evaluation.storage.repository import get_experiment
from evaluation.view.app import EXPORT_PER_PAGE, MAX_PER_PAGE, ahead_first, create_app
from evaluation.view.links import experiment_path

_HREF = re.compile(r'(href|src)="([^"]*)"')
_FORM = re.compile(r"<form\b.*?</form>", re.S)
_ANCHOR = re.compile(r'<a\b[^>]*?\bhref="([^"]*)"[^>]*>(.*?)</a>', re.S)
_OFFLINE_TITLE = "needs the running view: evalflow view"
MAX_PAIR_CONFIGS = 12  # 132 side-by-side pages


@dataclass(frozen=True)
class Exported:
    folder: Path
    pages: int


def export_view(engine: Engine, experiment: str, folder: Path) -> Exported:
    """Write ``folder``/summary.html and every page it links to; returns the count."""
    with Session(engine) as session:
        row = get_experiment(session, experiment)
        name = row.name
        ids = [int(r[0]) for r in session.exec(
            text(f"SELECT g.id FROM generations g WHERE g.experiment_id = :e AND {OWN_CONFIGS} "
                 "ORDER BY g.id"),
            params={"e": row.id},
        )]  # fmt: skip
        configs = [str(r[0]) for r in session.exec(
            text("SELECT config_hash FROM experiment_configs WHERE experiment_id = :e "
                 "ORDER BY position"),
            params={"e": row.id},
        )]  # fmt: skip
        metric = (list(row.metrics or []) or [""])[0]
        cases = [str(r[0]) for r in session.exec(
            text("SELECT DISTINCT c.case_id FROM generations g JOIN cases c ON c.uid = g.case_uid "
                 f"WHERE g.experiment_id = :e AND {OWN_CONFIGS} ORDER BY c.case_id"),
            params={"e": row.id},
        )]  # fmt: skip
    base = experiment_path(name)
    list_pages = max(1, -(-len(ids) // EXPORT_PER_PAGE))
    targets = {
        f"{base}/summary": "summary.html",
        f"{base}/matrix": "matrix.html",
        f"{base}/grid": "grid.html",
        **{
            f"{base}?per_page={EXPORT_PER_PAGE}&page={n}": f"generations-{n}.html"
            for n in range(1, list_pages + 1)
        },
        **{f"{base}/g/{i}": f"g/{i}.html" for i in ids},
        **{f"{base}/cases/{quote(c, safe='')}": f"cases/{_file_name(c)}.html" for c in cases},
    }
    pairs = (
        [(a, b) for a in configs for b in configs if a != b]
        if metric and len(configs) <= MAX_PAIR_CONFIGS
        else []
    )
    targets |= {
        f"{base}/compare?a={a}&b={b}&metric={quote(metric, safe='')}&sort={ahead_first(metric)}"
        f"&per_page={MAX_PER_PAGE}": _pair_file(a, b)
        for a, b in pairs
    }
    pages = asyncio.run(_fetch(create_app(engine), list(targets)))
    folder.mkdir(parents=True, exist_ok=True)
    for path, html in pages.items():
        out = folder / targets[path]
        out.parent.mkdir(parents=True, exist_ok=True)
        depth = targets[path].count("/")
        out.write_text(_rewrite(html, base, cases, set(pairs), depth), encoding="utf-8")
    static = folder / "static"
    static.mkdir(exist_ok=True)
    for asset in ("view.css", "view.js", "favicon.svg"):
        source = files("evaluation.view") / "static" / asset
        with source.open("rb") as src, (static / asset).open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return Exported(folder, len(pages))


async def _fetch(app, paths: list[str]) -> dict[str, str]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://export") as client:
        pages = {}
        for path in paths:
            response = await client.get(path)
            response.raise_for_status()
            pages[path] = response.text
        return pages


def _file_name(case_id: str) -> str:
    """A case id as a file name that needs no escaping in a link."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", case_id)


def _pair_file(a: str, b: str) -> str:
    return f"compare/{_file_name(a)}-vs-{_file_name(b)}.html"


def _rewrite(
    html: str, base: str, cases: list[str], pairs: set[tuple[str, str]], depth: int
) -> str:
    """Links to exported pages as relative files; links that need the server as text."""
    up = "../" * depth
    html = _FORM.sub("", html)

    def target(url: str) -> str | None:
        """The exported file ``url`` shows, relative to this page; None if none does."""
        if url.startswith("/static/"):
            return up + url.removeprefix("/")
        if url.startswith("?page="):  # the list's pager
            return f"{up}generations-{url.removeprefix('?page=')}.html"
        for suffix, file in (
            ("/summary", "summary.html"),
            ("/matrix", "matrix.html"),
            ("/grid", "grid.html"),
        ):
            if url == base + suffix:
                return up + file
        if url.startswith(base + "/g/") and url.removeprefix(base + "/g/").isdigit():
            return f"{up}g/{url.removeprefix(base + '/g/')}.html"
        if url.startswith(base + "/cases/"):
            case_id = unquote(url.removeprefix(base + "/cases/"))
            if case_id in cases:
                return f"{up}cases/{_file_name(case_id)}.html"
        if url in (base, base + "?"):
            return up + "generations-1.html"
        if url.startswith(base + "/compare?"):
            query = parse_qs(html_module.unescape(url).partition("?")[2])
            pair = (query.get("a", [""])[0], query.get("b", [""])[0])
            if pair in pairs and set(query) <= {"a", "b", "metric", "sort"}:
                return up + _pair_file(*pair)
        if url.startswith("#"):
            return url
        return None  # needs the server: filters, side by side, queries

    def anchor(match: re.Match[str]) -> str:
        if target(match.group(1)) is not None:
            return match.group(0)
        return f'<span class="offline" title="{_OFFLINE_TITLE}">{match.group(2)}</span>'

    html = _ANCHOR.sub(anchor, html)
    return _HREF.sub(lambda m: f'{m.group(1)}="{target(m.group(2)) or m.group(2)}"', html)
