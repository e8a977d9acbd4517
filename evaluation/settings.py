"""Where evalflow keeps things and where Ollama is. Read only at the edges (CLI, flows,
the recommend API, a spec that names no hosts); library code receives these values as
arguments."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from evaluation.errors import EvalError, StorageError
from evaluation.redact import redact_url

DATABASE_URL_ENV = "EVALFLOW_DATABASE_URL"
HOME_ENV = "EVALFLOW_HOME"
OLLAMA_HOST_ENV = "OLLAMA_HOST"
OLLAMA_DEFAULT_PORT = 11434


class SettingError(EvalError):
    """An environment variable evalflow reads holds a value it cannot use."""

    def __init__(self, variable: str, value: str, expected: str) -> None:
        self.variable = variable
        super().__init__(f"environment variable {variable}={redact_url(value)!r}: {expected}")


def evalflow_home() -> Path:
    """``$EVALFLOW_HOME``, else ``~/.evalflow``."""
    home = Path(os.environ.get(HOME_ENV) or Path.home() / ".evalflow").expanduser()
    if home.exists() and not home.is_dir():
        raise SettingError(HOME_ENV, str(home), "expected a folder, but it is a file")
    return home


def database_url(explicit: str | None = None, *, source: str = "--database") -> str:
    """The results database: ``explicit`` (given as ``source``: an option, or an
    argument of the Python API), else ``$EVALFLOW_DATABASE_URL``, else a SQLite file under
    ``evalflow_home()``. Any SQLAlchemy URL works (e.g. postgresql+psycopg2://). Nothing
    is created: the home folder is made by the first writer (``make_home_for``), so a
    command that only reads leaves a fresh home as it found it."""
    if explicit:
        return check_database_url(explicit, source)
    from_env = os.environ.get(DATABASE_URL_ENV)
    if from_env:
        return check_database_url(from_env, DATABASE_URL_ENV)
    return f"sqlite:///{evalflow_home() / 'evalflow.db'}"


def make_home_for(url: str) -> None:
    """Where ``url`` is the default database file (in ``evalflow_home()``) and not there
    yet, make its folder, or refuse a home that cannot be made or written (SettingError);
    for a writer about to create the database. A database there already is opened as it
    is: a teammate reading a shared home read-only reads it (every verb refused that home
    as not writable), and a write to it is refused by the database itself."""
    path = sqlite_file(url)
    home = evalflow_home()
    if path is None or path != home / "evalflow.db" or path.exists():
        return
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SettingError(
            HOME_ENV, str(home), f"cannot create the results folder ({error.strerror})"
        ) from None
    if not os.access(home, os.W_OK):
        raise SettingError(
            HOME_ENV,
            str(home),
            "the folder is not writable, and the results database would be created in it; "
            f"point {HOME_ENV} at a folder you may write (and --database at a database "
            "to read elsewhere)",
        )


def check_database_url(url: str, source: str) -> str:
    """``url`` if it looks like a SQLAlchemy URL; else an error naming where it came
    from (``--database`` or the environment variable), the password masked."""
    if "://" in url:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            port = make_url(url).port  # parsed as the engine will parse it
        except ValueError:  # SQLAlchemy's int() of the port
            port = -1
        except ArgumentError:  # not parsed here: the engine's own error names the URL
            return url
        # int() also reads "١١" (Arabic-Indic digits): the port must be written in ASCII
        written = port is not None and re.search(rf":0*{port}(?![0-9])", url)
        if port is not None and not (written and 1 <= port <= 65535):
            raise _refused(
                source,
                url,
                "its port is not a number 1-65535 in ASCII digits; expected e.g. "
                "postgresql+psycopg2://user@host:5432/db",
            )
        return url
    expected = (
        "expected a SQLAlchemy URL such as sqlite:///path/results.db or "
        "postgresql+psycopg2://user@host/db"
    )
    raise _refused(source, url, expected)


def ollama_url(value: str | None = None, *, source: str = OLLAMA_HOST_ENV) -> str:
    """The Ollama server's base URL from ``value`` (default ``$OLLAMA_HOST``), read as
    Ollama's own CLI reads it (``envconfig.Host()``): ``host:port``, ``scheme://host:port``
    or a bare host; no scheme means http and port 11434, ``http://host`` means port 80,
    ``https://host`` port 443; unset means ``http://127.0.0.1:11434``. Where Ollama warns
    and falls back to the default port, evalflow refuses: an error naming ``source`` (the
    variable, or the option such as ``--url`` the value came from). The user and password
    (to the host's last ``@``) are percent-encoded in the URL returned, so httpx reads
    the host read here; one it would still read otherwise is refused
    (``host_url_problem``)."""
    raw = os.environ.get(OLLAMA_HOST_ENV, "") if value is None else value
    text = raw.strip().strip("\"'").strip()
    default_port = OLLAMA_DEFAULT_PORT
    scheme, sep, hostport = text.partition("://")
    if not sep:
        scheme, hostport = "http", text
    elif scheme in ("http", "https"):
        default_port = 80 if scheme == "http" else 443
    else:
        raise _refused(source, raw, "expected http:// or https:// (or no scheme)")
    hostport, _, path = hostport.partition("/")
    userinfo, at, hostport = hostport.rpartition("@")
    host, port = _split_host_port(hostport)
    if host == "":  # ":11434": Go dials the local system
        host = "127.0.0.1"
    if hostport.count("[") != hostport.count("]"):  # "[::1": Ollama would guess
        raise _refused(source, raw, "expected [IPv6 address]:port, with its closing ']'")
    if host is None:
        host, port = "127.0.0.1", str(default_port)
        if hostport:
            host = hostport.strip("[]")
        if hostport.count(":") > 1 and not _is_ipv6(host):  # host:port:extra
            raise _refused(source, raw, "expected host:port, e.g. 127.0.0.1:11434 (one port)")
    if port_number(port) is None:
        raise _refused(
            source, raw, f"invalid port {port!r}; expected host:port, e.g. 127.0.0.1:11434"
        )
    shown = f"[{host}]" if _is_ipv6(host) else host
    user, colon, password = userinfo.partition(":")
    userinfo = _encoded(user) + colon + _encoded(password)
    url = f"{scheme}://{userinfo}{at}{shown}:{port}" + (f"/{path}".rstrip("/") if path else "")
    if not urlsplit(url).hostname:
        raise _refused(source, raw, "expected host:port, e.g. 127.0.0.1:11434")
    if problem := host_url_problem(url):
        raise _refused(source, raw, problem)
    return url


def _encoded(text: str) -> str:
    """A URL's user or password percent-encoded whole (what is already encoded stays
    as it is): no character of it can end the host part early for httpx."""
    return quote(unquote(text), safe="")


#: A host as httpx reads it that a connection can go to: a name (IDNA letters too) or
#: an IP address (an IPv6 one with its zone: ``[fe80::1%25eth0]``); not one with a
#: space (``http://a b:11434``, which httpx encodes).
_HOST = re.compile(r"[\w.\-~]+|[0-9A-Fa-f:.]+(?:%25[\w.\-]+)?")


def host_url_problem(url: str) -> str | None:
    """What is wrong with a model server's ``url`` (http or https) as httpx will read it,
    or None: httpx cannot read it, reads no usable host, or reads a different host or
    port than the one evalflow shows (``redact_url``: a ``/``, ``?`` or ``#`` in a
    password ends the host part for httpx, which would send the password's start to
    the host before it and the rest as a path)."""
    import httpx

    expected = "expected http(s)://host:port, e.g. http://127.0.0.1:11434"
    try:
        sent, shown = httpx.URL(url), httpx.URL(redact_url(url))
    except httpx.InvalidURL:
        return f"not a URL httpx can read; {expected}"
    if not _HOST.fullmatch(sent.host):
        return f"its host is not a host name or IP address; {expected}"
    if (sent.host, sent.port) != (shown.host, shown.port):
        return (
            "httpx would send it to another host than the one shown (a '/', '?' or '#' "
            "before the last '@' ends the host part): percent-encode them in a user or "
            "password (%2F, %3F, %23)"
        )
    return None


def port_number(text: str) -> int | None:
    """``text`` as a TCP port, 1-65535, or None. ASCII digits only: ``str.isdigit`` also
    takes "²" (which ``int`` then refuses) and ``int`` reads Arabic-Indic digits, which
    no URL parser of the libraries evalflow hands the URL to accepts."""
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    return int(text) if 1 <= int(text) <= 65535 else None


def _refused(source: str, value: str, expected: str) -> EvalError:
    """The error for a bad ``value`` from ``source``: an environment variable evalflow
    reads, or else what the value was given as (an option ``--url``, an argument)."""
    if source not in (DATABASE_URL_ENV, HOME_ENV, OLLAMA_HOST_ENV):
        return EvalError(f"{source} {redact_url(value)!r}: {expected}")
    return SettingError(source, value, expected)


def _split_host_port(hostport: str) -> tuple[str | None, str]:
    """Go's ``net.SplitHostPort``: (None, "") when ``hostport`` has no port."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end == -1 or not hostport[end + 1 :].startswith(":"):
            return None, ""
        return hostport[1:end], hostport[end + 2 :]
    if hostport.count(":") != 1:
        return None, ""
    host, port = hostport.split(":")
    return host, port


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


SHARE_DATABASE_ENV = "EVALFLOW_SHARE_DATABASE"
_YES, _NO = ("1", "true", "yes"), ("", "0", "false", "no")


def share_database() -> bool:
    """``$EVALFLOW_SHARE_DATABASE``: whether evalflow may add its tables to a database
    that holds other tables and none of its own (else refused: another application's
    database named by mistake). Once they are there, it is evalflow's and never asked."""
    raw = os.environ.get(SHARE_DATABASE_ENV, "")
    if raw.strip().lower() in _YES:
        return True
    if raw.strip().lower() in _NO:
        return False
    raise SettingError(SHARE_DATABASE_ENV, raw, "expected 1 (add evalflow's tables) or 0")


SANDBOX_PARALLEL_ENV = "EVALFLOW_SANDBOX_PARALLEL"


def sandbox_parallel() -> int:
    """How many code sandboxes may run at once: ``$EVALFLOW_SANDBOX_PARALLEL``, else the
    number of CPUs."""
    raw = os.environ.get(SANDBOX_PARALLEL_ENV)
    if raw is None:
        return os.cpu_count() or 1
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        from evaluation.errors import MetricError

        raise MetricError(f"{SANDBOX_PARALLEL_ENV} must be a whole number >= 1, got {raw!r}")
    return value


def sqlite_file(url: str, *, uri_filename: bool = False) -> Path | None:
    """The file of a SQLite URL (None for another database, one in memory, or not a
    URL); a URI filename's (``file:PATH?mode=ro&uri=true``: SQLite opens it as its query
    says) only where ``uri_filename`` asks for it, and never one that asks for a file in
    memory or an immutable one."""
    from urllib.parse import unquote

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    name, query = parsed.database, parsed.query
    if parsed.get_backend_name() != "sqlite" or name in (None, "", ":memory:"):
        return None
    if not name.startswith("file:"):
        return Path(name).expanduser()
    if not uri_filename or query.get("uri") not in ("true", "1"):
        return None
    if query.get("mode") == "memory" or query.get("immutable") == "1":
        return None
    name = unquote(name.removeprefix("file:"))  # SQLite decodes %HH
    if name.startswith("//"):  # file://host/path: the path from the third slash
        name = name[name.find("/", 2) :] if "/" in name[2:] else ""
    return Path(name).expanduser() if name else None


def no_database_yet(url: str) -> bool:
    """Whether ``url`` is a SQLite file not created yet: a reader finds nothing stored
    there, and opening it would create it (SQLite creates the file it opens)."""
    path = sqlite_file(url)
    return path is not None and not path.exists()


def refuse_a_named_database_not_there(explicit: str | None, explicit_name: str) -> None:
    """For a reader of stored results: a SQLite file the user named (``explicit``, called
    ``explicit_name``, else the environment) that does not exist is a wrong path, not an
    empty database, and opening it would create an empty file; an existing empty (0-byte)
    file likewise, which opening would turn into a database: StorageError. The default
    file is left to the caller (on a fresh install there is none yet)."""
    source = explicit_name if explicit else DATABASE_URL_ENV
    url = explicit or os.environ.get(DATABASE_URL_ENV)
    if not url or (path := sqlite_file(check_database_url(url, source))) is None:
        return  # not SQLite, or not a URL (said when it is opened)
    if not path.exists():
        raise StorageError(
            f"{source}: no results database at {path} (nothing is there yet; a sweep "
            "creates one: evalflow run SPEC)"
        )
    if path.is_file() and path.stat().st_size == 0:  # SQLite would make it a database
        raise StorageError(
            f"{source}: {path} is an empty file, not a results database (nothing is stored "
            "in it; a sweep creates one: evalflow run SPEC)"
        )
