"""A generated corpus of URLs with credentials (issue 43 §1): every printable character
(and some non-ASCII and percent-encoded ones) in a password, under every scheme evalflow
accepts, and credential-like query names; each URL read back by the library that uses it,
then shown through every redaction path. A password is two markers around the odd
characters: a marker seen in a shown text is a leak, whole or in part."""

from __future__ import annotations

import base64
import string
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy.engine import make_url

from evaluation.redact import is_secret_name, one_line, redact, redact_argv, redact_url, urls_given
from evaluation.settings import ollama_url

HEAD, TAIL = "Sq7w", "Wv4k"  # the password's two ends; neither may be shown
ODD = [*string.printable.strip(), " ", "é", "ß", "€", "漢", "%40", "%2F", "%20", "%3A", "%25"]
ODD += ["/'@ :?#", "a@b@c", "p@ss/w0rd's x", '"double"', "\\"]
DATABASES = ("postgresql", "postgresql+psycopg2", "postgresql+asyncpg", "mysql+pymysql")
HOSTS = ("http", "https")


def password(odd: str) -> str:
    return f"{HEAD}{odd}{TAIL}"


def leaked(text: str) -> bool:
    return HEAD in text or TAIL in text


def corpus() -> list[tuple[str, str, str]]:
    """(kind, url, password) for every odd character under every scheme."""
    rows = []
    for odd in ODD:
        secret = password(odd)
        for scheme in DATABASES:
            rows.append(("database", f"{scheme}://ana:{secret}@db.example:5432/x", secret))
        for scheme in HOSTS:
            rows.append(("host", f"{scheme}://ana:{secret}@gpu.example:11434", secret))
        rows.append(("ollama_host", f"ana:{secret}@gpu.example:11434", secret))
    return rows


CORPUS = corpus()


def read_back(kind: str, url: str) -> str | None:
    """The password as the library that uses ``url`` reads it (None: it reads none, or
    refuses the URL)."""
    try:
        if kind == "database":
            return make_url(url).password
        if kind == "ollama_host":
            url = ollama_url(url)
        return httpx.URL(url).password or None
    except Exception:  # refused: then the user's text is still what must not leak
        return None


@pytest.mark.parametrize(("kind", "url", "secret"), CORPUS)
def test_no_part_of_a_password_is_shown_whatever_it_holds(kind: str, url: str, secret: str):
    shown = redact_url(url)
    assert not leaked(shown), shown
    assert shown.startswith(url.split(":", 1)[0]) and "ana:***@" in shown
    read = read_back(kind, url)
    assert read is None or read not in shown  # as the library reads it, too
    # A text holding the URL, and its repr (an error line): masked when the command was
    # given the URL; without that, wherever the password holds no white space.
    for text in (f"cannot open {url}: refused", f"value {url!r} refused", url):
        assert not leaked(redact(text, known=[url])), text
        if not any(c.isspace() for c in secret):
            assert not leaked(redact(text)), redact(text)
    # A driver that received the (decoded) password and prints it, or a piece of it.
    for piece in (secret, read or "", *secret.replace("@", " ").replace("/", " ").split()):
        assert not leaked(one_line(f"server said: {piece}!", known=[url]))
    # The command line that carried it, as `run` echoes it to resume.
    option = "--url" if kind != "database" else "--database"
    for argv in (["run", "s.yaml", option, url], ["run", f"{option}={url}", "s.yaml"]):
        assert not leaked(" ".join(redact_argv(argv)))
        assert url in urls_given(argv, {}) or f"{option}={url}" in urls_given(argv, {})


@pytest.mark.parametrize("odd", ODD)
def test_a_percent_encoded_password_is_masked_encoded_and_decoded(odd: str) -> None:
    secret = password(odd)
    url = f"postgresql+psycopg2://ana:{quote(secret, safe='')}@db:5432/x"
    assert make_url(url).password == secret  # SQLAlchemy decodes it
    assert not leaked(redact_url(url)) and not leaked(redact(f"at {url} now"))
    assert not leaked(redact(f"password {secret} rejected", known=[url]))


@pytest.mark.parametrize("variable", ["OLLAMA_HOST", "EVALFLOW_DATABASE_URL", "PREFECT_API_URL"])
def test_urls_in_the_environment_are_known(variable: str) -> None:
    url = f"http://ana:{password(' /x')}@gpu:1"
    assert urls_given([], {variable: url}) == [url]
    assert not leaked(redact(f"{variable}={url!r} failed", known=urls_given([], {variable: url})))


SECRET_NAMES = [
    "password", "passwd", "pwd", "PASSWORD", "sslpassword", "secret", "secret_key",
    "client_secret", "token", "private_token", "auth_token", "access_token", "refresh_token",
    "api_key", "apikey", "api-key", "apiKey", "access_key", "AccessKeyId", "key", "auth",
    "authorization", "credential", "credentials", "X-Amz-Credential", "X-Amz-Signature",
    "X-Amz-Security-Token", "signature", "sig", "session", "sessionid", "session_token",
    "cookie", "jwt", "pass", "api%5Fkey",
    # OAuth and session credentials that are short words (attacker 43, defect 10)
    "code", "Code", "device_code", "user_code", "code_verifier", "client_assertion", "otp",
    "totp", "pin", "sid", "ticket", "JSESSIONID", "PHPSESSID", "bearer", "X-Goog-Signature",
]  # fmt: skip
PLAIN_NAMES = [
    "sslmode", "application_name", "connect_timeout", "max_tokens", "num_predict", "host",
    "port", "dbname", "user", "client_encoding", "keepalives", "top_k", "options", "mode",
    # names holding a short credential word that are not credentials
    "status_code", "error_code", "country_code", "code_challenge", "encoding", "pin_memory",
    "optimal", "sidebar", "inside", "state", "scope", "client_id", "redirect_uri", "nonce",
]  # fmt: skip


@pytest.mark.parametrize("name", SECRET_NAMES)
@pytest.mark.parametrize("base", [*(f"{s}://db:5432/x" for s in DATABASES), "http://gpu:1/api"])
def test_every_credential_named_query_parameter_is_masked(name: str, base: str) -> None:
    value = password("/ 'x=?")
    url = f"{base}?sslmode=require&{name}={value}&a=1"
    shown = redact_url(url)
    assert shown == f"{base}?sslmode=require&{name}=***&a=1"
    assert not leaked(redact(f"error at {url}", known=[url]))
    plain = value.replace(" ", "+").replace("'", "")  # as a library renders it
    assert redact(f"error at {base}?{name}={plain}&a=1") == f"error at {base}?{name}=***&a=1"
    assert redact(f"dsn: host=db {name}={plain} user=ana") == f"dsn: host=db {name}=*** user=ana"


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_other_parameters_are_shown(name: str) -> None:
    assert not is_secret_name(name)
    url = f"postgresql://ana@db:5432/x?{name}=v1"
    text = f"see {url} and {name}=v2"
    assert redact_url(url) == url and redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:////home/ana/.evalflow/evalflow.db",
        "sqlite:///results/a@b.db",
        "postgresql+psycopg2://postgres@127.0.0.1:5432/test",
        "ana@gpu:11434",
        "metrics: pass@1, semantic_similarity@all-minilm",
        "models: sim-small:1b, llama3.2:3b; max_tokens=512 num_ctx=4096",
        "field 'grid.top_p[0]': top_p must be in (0, 1], got 2.0",
    ],
)
def test_text_without_credentials_is_left_alone(text: str) -> None:
    assert redact(text) == text and redact(text, known=urls_given(text.split(), {})) == text
    assert " ".join(redact_argv(text.split())) == " ".join(text.split())


def test_a_password_quoted_in_a_settings_string_is_masked_whole() -> None:
    assert redact("host=db password='a b c' user=ana") == "host=db password=*** user=ana"


@pytest.mark.parametrize("odd", ODD)
def test_what_a_server_echoes_of_a_known_password_is_masked(odd: str) -> None:
    """A host's password as a server may say it back: decoded, percent-encoded, and
    ``user:password`` in base64 as its request's Basic header carried it."""
    secret = password(odd)
    url = f"http://ana:{quote(secret, safe='')}@gpu:11434"
    basic = base64.b64encode(f"ana:{secret}".encode()).decode()
    for said in (secret, quote(secret, safe=""), quote(secret), basic, basic.rstrip("=")):
        assert not leaked(redact(f"denied {said}!", known=[url]).replace("***", ""))
        assert basic not in redact(f"denied {said}!", known=[url])


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("header Basic YW5hOnB3 x", "header Basic *** x"),
        ("Authorization: Bearer eyJhbGciOi.x1-y x", "Authorization: *** x"),
        ('{"authorization": "Basic YW5hOnB3"}', '{"authorization": "***"}'),
        ("'Cookie': 'a1b2c3'", "'Cookie': '***'"),
        ("Bearer tk_8f2a9c1d77 rejected", "Bearer *** rejected"),
        ("Basic settings; Bearer authentication required", None),
    ],
)
def test_credential_headers_a_server_echoes_are_masked(text: str, shown: str | None) -> None:
    assert redact(text) == (shown or text)


@pytest.mark.parametrize("opening", ["(", "[", "{", "<"])
def test_a_url_in_brackets_keeps_its_scheme_and_user(opening: str) -> None:
    closing = {"(": ")", "[": "]", "{": "}", "<": ">"}[opening]
    text = f"cannot reach {opening}postgresql://ana:pa/ss@127.0.0.1:1/x{closing}"
    assert redact(text) == f"cannot reach {opening}postgresql://ana:***@127.0.0.1:1/x{closing}"


@pytest.mark.parametrize("opening", ["'", '"', "(", "["])
def test_a_masked_query_value_keeps_what_closes_around_its_url(opening: str) -> None:
    """Newcomer N10: "got 'http://127.0.0.1:18181/?api_key=***" lost its closing quote,
    the mask taking it for part of the key."""
    closing = {"(": ")", "[": "]"}.get(opening, opening)
    for value in ("s3cret", "***"):
        text = f"got {opening}http://127.0.0.1:1/?api_key={value}{closing}, expected x"
        assert redact(text) == f"got {opening}http://127.0.0.1:1/?api_key=***{closing}, expected x"


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["--api-key", "sk-LIVE123"], ["--api-key", "***"]),
        (["--api-key=sk-LIVE123"], ["--api-key=***"]),
        (["--token", "sk-LIVE123", "--url", "x"], ["--token", "***", "--url", "x"]),
        (["--password", "abc"], ["--password", "***"]),  # short: masked whole as a word
        (["--auth-token", "-v"], ["--auth-token", "-v"]),  # no value: the next option
        (["--api-key-env", "VLLM_KEY"], ["--api-key-env", "VLLM_KEY"]),  # a variable's name
        (["--api-key-env", "sk-LIVE123"], ["--api-key-env", "***"]),  # not a name: a key
        (["--max-tokens", "512", "--top-k", "4"], ["--max-tokens", "512", "--top-k", "4"]),
        # recheck R1: short options other tools take a key or a password with
        (["-k", "sk-LIVE123"], ["-k", "***"]),
        (["-pLIVE1234", "-t=tok-LIVE", "-u", "ana:LIVE"], ["-p***", "-t=***", "-u", "***"]),
        (["-v", "-q", "-x", "3"], ["-v", "-q", "-x", "3"]),
    ],
)
def test_the_value_of_an_option_named_like_a_credential_is_masked(
    argv: list[str], shown: list[str]
) -> None:
    """Newcomer F4: `run SPEC --api-key sk-LIVE123` (an option evalflow does not have)
    printed the key back whole in its `unrecognized arguments` line."""
    assert redact_argv(argv) == shown
    given = urls_given(argv, {})
    for word, masked in zip(argv, shown, strict=True):
        secret = word[len(masked) - 3 :] if masked.endswith("***") else word
        if masked.endswith("***") and len(secret) >= 4:
            assert secret in given
            assert redact(f"got {secret!r}: invalid", known=given) == "got '***': invalid"
    kept = [word for word, masked in zip(argv, shown, strict=True) if word == masked]
    assert not set(kept) & set(given)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("GET http://user@gpu:11434/api/tags", "GET http://***@gpu:11434/api/tags"),
        ("https://sk-abc@gateway:8443/v1 failed", "https://***@gateway:8443/v1 failed"),
        ("http://sk-abc:@127.0.0.1:1", "http://***@127.0.0.1:1"),
        ("postgresql+psycopg2://ana@db:5432/x", "postgresql+psycopg2://ana@db:5432/x"),
    ],
)
def test_a_lone_user_name_is_masked_in_a_web_url_only(text: str, shown: str) -> None:
    """httpx sends a web URL's lone user name as Basic auth (a token pasted there); a
    database URL's user name is shown, as ever."""
    assert redact(text) == shown
