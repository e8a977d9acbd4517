"""Refusals that quote a URL holding a password (issue 43 §1), through the real CLI as
the corpus runs them (one line, exit 2, nothing written): the password masked whole
however it is spelled (``/``, a quote, a space, ``@``) and every query parameter whose
name suggests a credential."""

from __future__ import annotations

import pytest

from tests.bad_input.test_corpus import (  # noqa: F401 - fixtures the world needs
    Bad,
    World,
    cli,
    demo_database,
    files_under,
    keyed_host,
    not_json_host,
    row_counts,
    run_cli,
    spec,
    web_server,
    world,
)

SECRET = "Sq7w"  # the start of every password below; never shown
DOWN = "127.0.0.1:1"  # nothing listens: the database cannot be opened

CASES = [
    Bad(
        "secret-database-password-slash",
        "cli",
        cli("--database", f"postgresql+psycopg2://ana:{SECRET}/pa/ss@{DOWN}/x", "experiments"),
        (f"cannot open the results database postgresql+psycopg2://ana:***@{DOWN}/x",),
        absent=(SECRET, "pa/ss"),
    ),
    Bad(
        "secret-database-password-quote-space",
        "cli",
        cli("--database", f"postgresql://ana:{SECRET}'s p w@{DOWN}/x", "experiments"),
        (f"cannot open the results database postgresql://ana:***@{DOWN}/x",),
        absent=(SECRET, "s p w"),
    ),
    Bad(
        "secret-database-query-names",
        "cli",
        cli(
            "--database",
            f"postgresql://ana@{DOWN}/x?secret_key={SECRET}1&private_token={SECRET}2"
            f"&auth_token={SECRET}3&connect_timeout=2",
            "experiments",
        ),
        ("secret_key=***&private_token=***&auth_token=***&connect_timeout=2",),
        absent=(SECRET,),
    ),
    Bad(
        "secret-ollama-host-space",
        "env",
        spec({"hosts": ...}, "plan"),
        ("OLLAMA_HOST='ana:***@gpu:99999'", "invalid port '99999'"),
        {"OLLAMA_HOST": f"ana:{SECRET} p@ss@gpu:99999"},
        absent=(SECRET, "p@ss"),
    ),
    Bad(
        "secret-spec-host-scheme",
        "spec",
        spec({"hosts": [{"name": "gpu", "url": f"ftp://ana:{SECRET} 'x@gpu:1"}]}, "plan"),
        ("must start with http:// or https://", "got 'ftp://ana:***@gpu:1'"),
        absent=(SECRET,),
    ),
    Bad(
        "secret-unrecognized-argument",
        "cli",
        cli("experiments", "--databse", f"postgresql://ana:{SECRET} x/y@db/x"),
        ("unrecognized arguments: --databse postgresql://ana:***@db/x",),
        absent=(SECRET,),
    ),
]


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_a_refusal_quoting_a_url_masks_its_credentials(
    bad: Bad,
    world: World,  # noqa: F811 - the corpus's fixture, imported above
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in bad.env.items():
        monkeypatch.setenv(name, value)
    argv = bad.argv(world)
    before, files = row_counts(world.db), files_under(world.root)
    rc, out, err = run_cli(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), (rc, out, err)
    for fragment in bad.expect:
        assert fragment in lines[0], (fragment, lines[0])
    for secret in bad.absent:
        assert secret not in out + err, lines[0]
    assert row_counts(world.db) == before and files_under(world.root) == files
