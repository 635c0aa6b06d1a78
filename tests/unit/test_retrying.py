"""Tracking writes ride out outages: transient failures retried with backoff, others raised at once."""

import pytest
from mlflow.exceptions import MlflowException, RestException

from sweep.retrying import RetryingClient, TrackingUnavailable, call_with_retries, is_transient


def test_refused_connections_and_server_errors_are_transient() -> None:
    assert is_transient(
        MlflowException("API request to http://x/api failed with exception Connection refused")
    )
    assert is_transient(RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "later"}))
    assert is_transient(RestException({"error_code": "INTERNAL_ERROR", "message": "db restarting"}))
    assert is_transient(ConnectionRefusedError())


def test_requests_the_server_rejected_are_not_transient() -> None:
    assert not is_transient(RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}))
    assert not is_transient(RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no run"}))
    assert not is_transient(ValueError("a bug"))
    assert not is_transient(FileNotFoundError("an artifact that is not there"))


class Flaky:
    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self, value: int) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return value * 2


def test_a_transient_failure_is_retried_until_the_call_succeeds() -> None:
    fn = Flaky(2, ConnectionRefusedError())
    assert call_with_retries(fn, 21, patience=10) == 42
    assert fn.calls == 3


def test_a_permanent_failure_is_raised_at_once() -> None:
    fn = Flaky(5, RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}))
    with pytest.raises(RestException):
        call_with_retries(fn, 1, patience=10)
    assert fn.calls == 1


def test_an_outage_longer_than_the_patience_gives_up_with_a_clear_error() -> None:
    fn = Flaky(1000, ConnectionRefusedError())
    with pytest.raises(TrackingUnavailable, match="did not take the request for 1 s"):
        call_with_retries(fn, 1, patience=1.0)
    assert fn.calls >= 2


def test_retrying_client_wraps_every_method_and_keeps_the_uri() -> None:
    class Client:
        tracking_uri = "http://127.0.0.1:5000"

        def __init__(self) -> None:
            self.double = Flaky(1, ConnectionRefusedError())

    client = RetryingClient(Client(), patience=5)
    assert client.tracking_uri == "http://127.0.0.1:5000"
    assert client.double(4) == 8


def test_a_server_answering_500_gets_a_shorter_wait_than_an_outage() -> None:
    from sweep import retrying

    error = MlflowException(
        "API request to http://x/api failed with exception ... too many 500 error responses"
    )
    fn = Flaky(1000, error)
    saved = retrying._SERVER_ERROR_PATIENCE_S
    retrying._SERVER_ERROR_PATIENCE_S = 1.0
    try:
        with pytest.raises(TrackingUnavailable, match="for 1 s"):
            call_with_retries(fn, 1, patience=600)
    finally:
        retrying._SERVER_ERROR_PATIENCE_S = saved
