"""Reading an S3 object as a stream over a connection that fails: resumed, never restarted or mixed.

The object lives on the real S3-compatible server (moto, ``s3_server``) and is read through
:class:`~tests.reliability.s3_proxy.FaultyS3Proxy`, which cuts or stalls bodies, resets connections and
answers 500 / 503 SlowDown. The client's own retries are turned off (``total_max_attempts: 1``) except
where a test says otherwise, so what is seen is this stream's behaviour, not botocore's.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from devservices.s3_server import LocalS3, create_bucket, s3_hook
from include.common.s3_stream import (
    ObjectChanged,
    ObjectMissing,
    ResumePolicy,
    S3ObjectStream,
    S3ReadFailed,
    open_object,
)
from tests.conftest import S3_CONN_ID
from tests.reliability.s3_proxy import Fault, FaultyS3Proxy

BUCKET = "s3-stream"
KEY = "folder/object.bin"
CONTENT = random.Random(15).randbytes(300_000)
PROXIED_CONN_ID = "s3_behind_a_faulty_proxy"


@pytest.fixture(scope="module")
def bucket(s3_server: LocalS3) -> str:
    create_bucket(S3_CONN_ID, BUCKET)
    return BUCKET


@pytest.fixture
def proxy(s3_server: LocalS3, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyS3Proxy]:
    s3_hook(S3_CONN_ID).get_conn().put_object(Bucket=bucket, Key=KEY, Body=CONTENT)
    with FaultyS3Proxy(s3_server.endpoint_url) as proxy:
        monkeypatch.setenv(f"AIRFLOW_CONN_{PROXIED_CONN_ID.upper()}", json.dumps(connection(proxy)))
        yield proxy


def connection(proxy: FaultyS3Proxy, *, client_retries: dict[str, Any] | None = None) -> dict[str, Any]:
    extra = {
        "endpoint_url": proxy.endpoint_url,
        "region_name": "us-east-1",
        "config_kwargs": {"retries": client_retries or {"mode": "standard", "total_max_attempts": 1}},
    }
    return {"conn_type": "aws", "login": "local-key", "password": "local-secret", "extra": extra}


def client() -> Any:
    return s3_hook(PROXIED_CONN_ID).get_conn()


class Pauses(list[float]):
    """Records the backoff instead of sleeping it: the tests assert the schedule, not the clock."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def assert_each_get_resumed_where_the_last_stopped(proxy: FaultyS3Proxy, etag: str) -> None:
    """Each GET starts at the byte the previous ones delivered, never before, never from 0 again.

    After a reset, the client's TCP stack drops what it had received and not yet handed over,
    so the next GET may start short of what the proxy sent, though past where the cut GET began.
    """
    start, reached = 0, 0
    for previous, get in zip([None, *proxy.gets], proxy.gets, strict=False):
        if previous is not None and previous.fault is Fault.RESET:
            assert start < get.start <= reached, proxy.gets
        else:
            assert get.start == reached, proxy.gets
        assert get.if_match == etag
        start, reached = get.start, get.start + get.sent
    assert reached == len(CONTENT)


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param([Fault.CUT] * 3, id="body-cut-three-times"),
        pytest.param([Fault.RESET] * 2, id="connection-reset-twice"),
        pytest.param([Fault.INTERNAL_ERROR, Fault.SLOW_DOWN, Fault.SLOW_DOWN], id="500-then-503-slowdown"),
        pytest.param([Fault.CUT, Fault.SLOW_DOWN, Fault.RESET, Fault.INTERNAL_ERROR, Fault.CUT], id="mixed"),
    ],
)
def test_every_fault_is_resumed_from_the_byte_reached_and_the_bytes_are_the_objects(
    proxy: FaultyS3Proxy, faults: list[Fault]
) -> None:
    proxy.inject(BUCKET, KEY, *faults)
    pauses = Pauses()
    with open_object(client(), BUCKET, KEY, sleep=pauses) as stream:
        data = stream.read()
        raw: S3ObjectStream = stream.raw

    assert data == CONTENT
    assert [get.fault for get in proxy.gets] == [*faults, None]
    assert proxy.gets[1].start > 0 or faults[0] in (Fault.INTERNAL_ERROR, Fault.SLOW_DOWN)
    assert_each_get_resumed_where_the_last_stopped(proxy, raw.etag)
    assert raw.resumes == len(faults)
    assert len(pauses) == len(faults)


def test_a_body_that_stalls_is_given_up_at_the_clients_read_timeout_and_resumed(
    proxy: FaultyS3Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stall lasts until the test ends, so only the timeout can end it: no race on the clock."""
    impatient = connection(proxy)
    impatient["extra"]["config_kwargs"]["read_timeout"] = 0.3
    monkeypatch.setenv(f"AIRFLOW_CONN_{PROXIED_CONN_ID.upper()}", json.dumps(impatient))
    proxy.inject(BUCKET, KEY, Fault.STALL)
    with open_object(client(), BUCKET, KEY, sleep=Pauses()) as stream:
        assert stream.read() == CONTENT
        assert stream.raw.resumes == 1
    # What the timed-out read had taken from the socket is lost with it: the resumption starts
    # at the last byte handed over, at most where the proxy stopped sending.
    first, resumed = proxy.gets
    assert resumed.start <= first.sent


def test_a_cut_body_is_read_from_its_middle_not_from_zero(proxy: FaultyS3Proxy) -> None:
    proxy.inject(BUCKET, KEY, Fault.CUT)
    with open_object(client(), BUCKET, KEY, sleep=Pauses()) as stream:
        assert stream.read() == CONTENT
    assert [get.range for get in proxy.gets] == ["bytes=0-", f"bytes={len(CONTENT) // 2}-"]


def test_reads_stay_within_the_callers_buffer(proxy: FaultyS3Proxy) -> None:
    proxy.inject(BUCKET, KEY, Fault.CUT)
    buffer = bytearray(4096)
    read = bytearray()
    with S3ObjectStream(client(), BUCKET, KEY, sleep=Pauses()) as raw:
        while count := raw.readinto(buffer):
            assert count <= len(buffer)
            read += buffer[:count]
    assert read == CONTENT


def test_patience_starts_again_after_progress_so_a_link_cut_often_still_finishes(
    proxy: FaultyS3Proxy,
) -> None:
    policy = ResumePolicy(attempts=3)
    proxy.inject(BUCKET, KEY, *[Fault.CUT] * 10)
    pauses = Pauses()
    with open_object(client(), BUCKET, KEY, policy=policy, sleep=pauses) as stream:
        assert stream.read() == CONTENT
        assert stream.raw.resumes == 10
    assert set(pauses) == {policy.first_delay}, "each cut made progress, so no backoff grew"


def test_an_object_replaced_mid_read_raises_object_changed_and_nothing_is_mixed(
    proxy: FaultyS3Proxy,
) -> None:
    proxy.inject(BUCKET, KEY, Fault.CUT)
    with open_object(client(), BUCKET, KEY, buffer_size=4096, sleep=Pauses()) as stream:
        head = stream.read(1000)
        s3_hook(S3_CONN_ID).get_conn().put_object(Bucket=BUCKET, Key=KEY, Body=b"a new version")
        with pytest.raises(ObjectChanged, match="replaced or deleted during the read"):
            stream.read()
    assert head == CONTENT[:1000]
    assert [get.status for get in proxy.gets] == [206, 412]


def test_an_object_deleted_mid_read_raises_object_changed(proxy: FaultyS3Proxy) -> None:
    proxy.inject(BUCKET, KEY, Fault.RESET)
    with open_object(client(), BUCKET, KEY, buffer_size=4096, sleep=Pauses()) as stream:
        stream.read(1000)
        s3_hook(S3_CONN_ID).get_conn().delete_object(Bucket=BUCKET, Key=KEY)
        with pytest.raises(ObjectChanged):
            stream.read()


def test_a_server_that_keeps_failing_ends_in_a_clear_error_after_bounded_tries(proxy: FaultyS3Proxy) -> None:
    proxy.inject(BUCKET, KEY, Fault.SLOW_DOWN, forever=True)
    pauses = Pauses()
    stream = open_object(client(), BUCKET, KEY, sleep=pauses)
    with stream, pytest.raises(S3ReadFailed, match=r"gave up after 8 tries .* at byte 0 .*SlowDown"):
        stream.read()
    assert len(proxy.gets) == 8
    assert pauses == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_a_refusal_is_not_retried(proxy: FaultyS3Proxy) -> None:
    proxy.inject(BUCKET, KEY, Fault.ACCESS_DENIED, forever=True)
    pauses = Pauses()
    stream = open_object(client(), BUCKET, KEY, sleep=pauses)
    with stream, pytest.raises(S3ReadFailed, match=r"refused the read \(HTTP 403 AccessDenied\)"):
        stream.read()
    assert len(proxy.gets) == 1
    assert pauses == []


def test_the_clients_own_retries_repeat_the_same_range_inside_one_try(
    proxy: FaultyS3Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore retries a 503 before get_object returns; the stream sees one GET, no resumption."""
    retrying = connection(proxy, client_retries={"mode": "standard", "total_max_attempts": 2})
    monkeypatch.setenv(f"AIRFLOW_CONN_{PROXIED_CONN_ID.upper()}", json.dumps(retrying))
    proxy.inject(BUCKET, KEY, Fault.CUT, Fault.SLOW_DOWN)
    pauses = Pauses()
    with open_object(client(), BUCKET, KEY, sleep=pauses) as stream:
        assert stream.read() == CONTENT
        assert stream.raw.resumes == 1, "the cut body: botocore does not retry a body"
    assert [get.start for get in proxy.gets] == [0, len(CONTENT) // 2, len(CONTENT) // 2]
    assert len(pauses) == 1


def test_a_missing_object_is_reported_as_missing(proxy: FaultyS3Proxy) -> None:
    with pytest.raises(ObjectMissing, match=r"does-not-exist\.csv does not exist"):
        S3ObjectStream(client(), BUCKET, "does-not-exist.csv")


def test_an_empty_object_reads_as_empty_without_a_get(proxy: FaultyS3Proxy) -> None:
    s3_hook(S3_CONN_ID).get_conn().put_object(Bucket=BUCKET, Key=KEY, Body=b"")
    with open_object(client(), BUCKET, KEY) as stream:
        assert stream.read() == b""
    assert proxy.gets == []
