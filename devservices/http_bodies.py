"""What the local HTTP services (the API simulator, the profile receiver) share: reading a body.

Standard library only: compose runs these services on a plain Python image.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


def read_request_body(handler: BaseHTTPRequestHandler, limit: int) -> bytes | None:
    """The request's body, ``None`` if it is larger than ``limit`` bytes (the connection is then closed).

    Read even when unused, or its bytes would be taken for the next request on the connection.
    """
    try:
        length = int(handler.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    if length > limit:
        handler.close_connection = True
        return None
    return handler.rfile.read(length) if length > 0 else b""
