"""The one translation from HTTP-level failures to the evalflow error tree."""

from __future__ import annotations

import httpx
import pytest

from evaluation.backends._http import (
    TRANSPORT_ERRORS,
    IncompleteStream,
    MalformedStream,
    StreamErrorLine,
    UnpooledEmbedding,
    error_message,
    to_backend_error,
    translate_errors,
)
from evaluation.errors import (
    BackendError,
    BackendOverloaded,
    BackendRejected,
    BackendServerError,
    BackendTimeout,
    BackendUnavailable,
    ModelNotFound,
)

# The documented mapping (module docstring of evaluation/backends/_http.py).
EXPECTED = {
    httpx.ConnectError: BackendUnavailable,
    httpx.ConnectTimeout: BackendUnavailable,
    httpx.ReadTimeout: BackendTimeout,
    httpx.WriteTimeout: BackendTimeout,
    httpx.PoolTimeout: BackendTimeout,
    httpx.ReadError: BackendUnavailable,
    httpx.WriteError: BackendUnavailable,
    httpx.CloseError: BackendUnavailable,
    httpx.ProxyError: BackendUnavailable,
    httpx.RemoteProtocolError: BackendUnavailable,
    IncompleteStream: BackendUnavailable,
    httpx.DecodingError: BackendServerError,
    MalformedStream: BackendServerError,
    UnpooledEmbedding: BackendRejected,
    StreamErrorLine: BackendServerError,
    httpx.UnsupportedProtocol: BackendRejected,
    httpx.LocalProtocolError: BackendRejected,
    httpx.TooManyRedirects: BackendRejected,
}


def _leaves(cls: type) -> set[type]:
    subclasses = cls.__subclasses__()
    if not subclasses:
        return {cls}
    return set().union(*(_leaves(sub) for sub in subclasses))


def test_every_httpx_request_error_is_mapped() -> None:
    """httpx's errors and the backends' own; not those other code subclasses where it
    is imported beside them (tasks/' PrefectBusy, of the Prefect API's busy answers)."""
    raised = {c for c in _leaves(httpx.RequestError) if c.__module__.startswith(_RAISED_BY)}
    assert raised <= set(EXPECTED)


_RAISED_BY = ("httpx", "evaluation.")


@pytest.mark.parametrize(("raised", "expected"), list(EXPECTED.items()))
def test_each_lower_level_error_maps_as_documented(raised: type, expected: type) -> None:
    with pytest.raises(BackendError) as caught, translate_errors("gpu-1", "llama3"):
        raise raised("the detail")
    error = caught.value
    assert type(error) is expected
    assert error.retryable is (expected is not BackendRejected)
    assert isinstance(error.__cause__, raised)
    assert (error.host, error.model) == ("gpu-1", "llama3")
    assert "the detail" in str(error)


def test_the_table_lists_subclasses_before_their_bases() -> None:
    classes = [cls for cls, _ in TRANSPORT_ERRORS]
    for i, cls in enumerate(classes):
        assert not any(issubclass(later, cls) and later is not cls for later in classes[i + 1 :])


def _status_error(status: int, body: str) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://h/api/chat")
    response = httpx.Response(status, text=body, request=request)
    return httpx.HTTPStatusError("status", request=request, response=response)


@pytest.mark.parametrize(
    ("status", "body", "expected", "message"),
    [
        (
            503,
            '{"error":"server busy, please try again.  maximum pending requests exceeded"}',
            BackendOverloaded,
            "server busy, please try again.  maximum pending",
        ),
        (
            500,
            '{"error":"llama runner process has terminated"}',
            BackendServerError,
            "llama runner process has terminated",
        ),
        (502, "Bad Gateway", BackendServerError, "Bad Gateway"),
        (
            404,
            '{"error":"model \\"x\\" not found, try pulling it first"}',
            ModelNotFound,
            'model "x" not found',
        ),
        (
            404,
            '{"error":{"message":"The model `x` does not exist.","type":"NotFoundError"}}',
            ModelNotFound,
            "The model `x` does not exist.",
        ),
        (404, "404 page not found", BackendRejected, "404 page not found"),
        (400, '{"error":"model is required"}', BackendRejected, "model is required"),
        (
            422,
            '{"object":"error","message":"max_tokens is too large"}',
            BackendRejected,
            "max_tokens is too large",
        ),
    ],
)
def test_status_codes_map_with_the_servers_message(
    status: int, body: str, expected: type, message: str
) -> None:
    error = to_backend_error(_status_error(status, body), host="h", model="x")
    assert type(error) is expected
    assert error.status_code == status
    assert message in str(error)


def test_unrelated_exceptions_pass_through_untouched() -> None:
    with pytest.raises(KeyError), translate_errors("h"):
        raise KeyError("not an HTTP problem")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"error": "plain"}', "plain"),
        ('{"error": {"message": "nested", "type": "api_error"}}', "nested"),
        ("  not json  ", "not json"),
        ("[1, 2]", "[1, 2]"),
    ],
)
def test_error_message_reads_both_dialects(body: str, message: str) -> None:
    assert error_message(body) == message
