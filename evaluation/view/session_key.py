"""The secret a browser shows it was given by the user who started a page served without a
login (newcomers' ncedge-E1). ``same_origin``'s token stops another web page open in the
same browser, but any local user of a shared machine could GET the page, read its token
and rate as the reviewer, reveal blinded pairs, or start and cancel runs.

The server makes a key when it starts and the command prints its link with ``?key=KEY``
(as Jupyter does). Opening that link sets the key as a cookie (HttpOnly, SameSite=Strict,
named after the port) and redirects to the same address without it, so the browser flow
is the one click it was. The pages' writes (the review's rating and reveal, the monitor's
Start and Cancel), and every page of the review (a rater's session), need the cookie;
else 403 saying to open the printed link. Another local user sees neither the link (the
terminal is the reviewer's) nor the cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from evaluation.view.same_origin import new_token, token_matches

KEY_PARAM = "key"


def new_key() -> str:
    """A server's key, printed in its link."""
    return new_token()


def cookie_name(request: Request) -> str:
    """One cookie per port: a browser sends a host's cookies to each of its ports, and
    two servers on one machine must not take each other's key."""
    return f"evalflow-key-{request.url.port or 80}"


def keyed(request: Request, key: str) -> bool:
    """Whether the request carries this server's key (its cookie)."""
    return token_matches(request.cookies.get(cookie_name(request)), key)


def keyed_link(url: str, key: str) -> str:
    """The link a command prints: ``url`` with the key (opening it sets the cookie)."""
    return f"{url}{'&' if '?' in url else '?'}{KEY_PARAM}={key}"


def add_session_key(
    app: FastAPI, key: str, *, guarded: Callable[[str], bool], command: str
) -> None:
    """Set the cookie on a visit with ``?key=`` and refuse a request to a ``guarded``
    path without it. ``command``: what printed the link (said when one is refused)."""
    refused = (
        f"refused: this page needs the link `{command}` printed when it started (it carries "
        "the server's key); open that link in this browser"
    )

    @app.middleware("http")
    async def session_key(request: Request, call_next) -> Response:
        given = request.query_params.get(KEY_PARAM)
        if given is not None:
            if not token_matches(given, key):
                return PlainTextResponse(
                    f"refused: this link's key is not this server's: open the link `{command}` "
                    "printed when it started",
                    403,
                )
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != KEY_PARAM]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            answer = RedirectResponse(target, status_code=303)
            answer.set_cookie(cookie_name(request), key, httponly=True, samesite="strict", path="/")
            return answer
        if guarded(request.url.path) and not keyed(request, key):
            return PlainTextResponse(refused, 403)
        return await call_next(request)
