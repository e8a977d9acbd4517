"""An exception leaving a flow carries no credential of the URLs the process was given
(Prefect stores its message as the flow run's state), and the wrapped flow function
keeps its own globals, where Prefect resolves its parameters' annotations."""

from __future__ import annotations

import asyncio

import pytest

from flows.masked_errors import masked_errors

URL = "http://ana:Sq7w p@ss/Wv4k@gpu:1"


async def _failing(times: int) -> int:
    raise RuntimeError(f"could not reach {URL} after {times} tries")


def test_the_error_leaving_a_flow_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", URL)
    wrapped = masked_errors(_failing)
    with pytest.raises(RuntimeError) as failed:
        asyncio.run(wrapped(3))
    assert str(failed.value) == "could not reach http://ana:***@gpu:1 after 3 tries"
    assert wrapped.__globals__ is _failing.__globals__ and wrapped.__wrapped__ is _failing
    assert wrapped.__name__ == "_failing" and wrapped.__annotations__ == {
        "times": "int",
        "return": "int",
    }
