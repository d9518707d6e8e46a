"""One S3 object read as a forward-only stream that survives an unstable connection.

The decision: a body cut mid-way is resumed from the last byte received, with a ranged GET
(``Range: bytes=<position>-``), never restarted; and every GET carries ``If-Match`` with the
ETag the object had when it was opened, so bytes of two versions are never joined: S3 answers
412 to a resumption of a replaced object, and :class:`ObjectChanged` says so. The object is
HEADed once, for its size and ETag.

Why our own loop and not boto3's retries: botocore retries a *request* (a 500, a 503 SlowDown,
a connection refused) before it hands back the response, but once ``get_object`` has returned,
the body is streamed by the caller, and a cut there (``IncompleteReadError``, a reset, a read
timeout, ``ResponseStreamingError``) reaches the caller as an exception with no retry. So this
stream retries both: the body's failures, and the request errors botocore gave up on. The two
compose: each of our attempts may be several requests of the client's own retry policy (the
provider's default is botocore's "legacy" mode, 5 requests), all with the same range, so the
worst case against a server that keeps failing is ``attempts`` x the client's attempts.

What is bounded: ``attempts`` counts failures in a row *without a byte of progress*; once a
read hands bytes over, the next failure starts the count (and the backoff) afresh, so a long file
over a link that drops every few megabytes still completes, while a server that keeps failing
ends in :class:`S3ReadFailed` after ``attempts`` tries and their backoff (0.2 s doubling,
capped at 5 s: about 16 s in all with the defaults). Memory: ``readinto`` fills the caller's
buffer from the socket, so nothing beyond that buffer (and urllib3's socket buffer) is held.

The price: one HEAD per object, and a few hundred bytes of headers per resumption.
"""

from __future__ import annotations

import http.client
import io
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
)
from urllib3.exceptions import HTTPError as URLLib3Error

log = logging.getLogger(__name__)

# A cut body, a reset or timed-out socket, or a request botocore could not complete: worth
# asking again from where the read stands. (HTTPClientError covers botocore's ConnectionError
# family and its ReadTimeoutError.)
_TRANSIENT_IO = (
    IncompleteReadError,
    ResponseStreamingError,
    HTTPClientError,
    URLLib3Error,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)
# Answers S3 documents as "try again" (InternalError, SlowDown, ServiceUnavailable...).
_TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
_TRANSIENT_CODES = frozenset({"InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout"})


class ObjectChanged(RuntimeError):
    """The object was replaced or deleted during the read; nothing of two versions was mixed."""


class ObjectMissing(FileNotFoundError):
    """The object does not exist (S3 answered 404 to the HEAD)."""


class S3ReadFailed(RuntimeError):
    """S3 kept failing (or refused the read); the message says what was tried and what to check."""


@dataclass(frozen=True)
class ResumePolicy:
    """How often, and how patiently, a read that makes no progress is tried again."""

    attempts: int = 8
    first_delay: float = 0.2
    max_delay: float = 5.0

    def delays(self) -> Iterator[float]:
        """The pause before each try after the first: doubling from ``first_delay``, capped."""
        delay = self.first_delay
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_delay)


class S3ObjectStream(io.RawIOBase):
    """The bytes of ``s3://bucket/key`` as the object was when opened, read once, forward only.

    Wrap it in :class:`io.BufferedReader` (as :func:`open_object` does) for ``read(n)``.
    ``resumes`` counts the ranged GETs issued after a failure, so a result can report them;
    ``position`` is the next byte to read, ``size`` and ``etag`` the object's at opening.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        policy: ResumePolicy = ResumePolicy(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self._client = client
        self.bucket = bucket
        self.key = key
        self._policy = policy
        self._sleep = sleep
        self._body: Any = None
        self._gets = 0
        self.position = 0
        self.size = 0  # known once HEADed, below
        head = self._retrying(self._head)
        self.size = head["ContentLength"]
        self.etag: str = head["ETag"]

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def resumes(self) -> int:
        """The GETs after the first: each one picked the read up where a failure left it."""
        return max(self._gets - 1, 0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.size or not len(buffer):
            return 0
        return self._retrying(lambda: self._read_some(buffer))

    def close(self) -> None:
        self._drop_body()
        super().close()

    def _head(self) -> dict[str, Any]:
        try:
            return self._client.head_object(Bucket=self.bucket, Key=self.key)
        except ClientError as error:
            if _status(error) == 404:
                raise ObjectMissing(f"{self.url} does not exist") from error
            raise

    def _read_some(self, buffer: Any) -> int:
        if self._body is None:
            self._body = self._get()
        count = self._body.readinto(buffer)
        if not count:
            # botocore checks the length only on some paths: an early end is a cut like any other.
            raise IncompleteReadError(actual_bytes=self.position, expected_bytes=self.size)
        self.position += count
        return count

    def _get(self) -> Any:
        self._gets += 1
        try:
            answer = self._client.get_object(
                Bucket=self.bucket, Key=self.key, Range=f"bytes={self.position}-", IfMatch=self.etag
            )
        except ClientError as error:
            if _status(error) in (404, 412):
                raise ObjectChanged(
                    f"{self.url} was replaced or deleted during the read (at byte {self.position} of "
                    f"{self.size}); nothing of two versions was mixed: read it again once it is "
                    "no longer being written"
                ) from error
            raise
        # A server that ignored the range would send the object from its first byte again.
        expected = f"bytes {self.position}-{self.size - 1}/{self.size}"
        if answer.get("ContentRange") != expected:
            answer["Body"].close()
            raise S3ReadFailed(
                f"{self.url}: asked for {expected}, the server sent {answer.get('ContentRange')!r}; "
                "the endpoint does not honour ranged GETs, which this read needs to resume"
            )
        return answer["Body"]

    def _retrying(self, step: Callable[[], Any]) -> Any:
        # Each call starts with full patience: the call before it returned bytes, which is progress.
        delays = self._policy.delays()
        while True:
            try:
                return step()
            except (ClientError, *_TRANSIENT_IO) as error:
                if isinstance(error, ClientError) and not _is_transient(error):
                    raise S3ReadFailed(
                        f"{self.url}: S3 refused the read ({_describe(error)}); check that the "
                        "connection's credentials may s3:GetObject it"
                    ) from error
                self._drop_body()
                delay = next(delays, None)
                if delay is None:
                    raise S3ReadFailed(
                        f"{self.url}: gave up after {self._policy.attempts} tries in a row without "
                        f"progress, at byte {self.position} of {self.size or 'unknown'} "
                        f"(last: {_describe(error)}); check the endpoint and the network"
                    ) from error
                log.warning(
                    "%s: %s at byte %d; trying again from there in %.1f s",
                    self.url,
                    _describe(error),
                    self.position,
                    delay,
                )
                self._sleep(delay)

    def _drop_body(self) -> None:
        if self._body is not None:
            # A half-read connection cannot go back to the pool; closing discards it.
            self._body.close()
            self._body = None


def open_object(
    client: Any,
    bucket: str,
    key: str,
    *,
    buffer_size: int = 1 << 20,
    policy: ResumePolicy = ResumePolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> io.BufferedReader:
    """A buffered binary stream over one object; its ``.raw`` is the :class:`S3ObjectStream`."""
    return io.BufferedReader(S3ObjectStream(client, bucket, key, policy=policy, sleep=sleep), buffer_size)


def _status(error: ClientError) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _is_transient(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    return _status(error) in _TRANSIENT_STATUS or code in _TRANSIENT_CODES


def _describe(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return f"HTTP {_status(error)} {error.response.get('Error', {}).get('Code', '')}".strip()
    return f"{type(error).__name__}: {error}"
