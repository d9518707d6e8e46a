"""What a secret looks like in a file, and a scan of files for secrets.

Shared by the secret scans: ``test_secrets_in_logs.py`` (a full ``make run``) and
``tests/deploy/test_celery_executor.py`` (the log folder of a scheduler-run deployment).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus


def encoded_forms(secret: str) -> set[bytes]:
    """``secret`` as bytes, URL-encoded, JSON-escaped and base64-encoded inside any longer text.

    Base64 of a longer string holds the secret's encoding at one of three alignments; the
    characters at either end also depend on the neighbouring bytes, so only the middle is sought.
    """
    raw = secret.encode()
    forms = {
        raw,
        quote(secret, safe="").encode(),
        quote_plus(secret).encode(),
        json.dumps(secret)[1:-1].encode(),
    }
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        start = -(-offset * 4 // 3)  # characters that mix in the bytes before
        end = (offset + len(raw)) // 3 * 4  # full groups only: the last may mix in bytes after
        forms.add(encoded[start:end])
        forms.add(base64.urlsafe_b64encode(b"\0" * offset + raw)[start:end])
    return forms


def key_body_lines(private_key_pem: str) -> set[bytes]:
    return {line.encode() for line in private_key_pem.splitlines() if line and not line.startswith("-----")}


@dataclass
class Scan:
    files: list[Path] = field(default_factory=list)
    bytes_read: int = 0
    found: list[str] = field(default_factory=list)

    def search(self, name: str, content: bytes, needles: dict[str, set[bytes]]) -> None:
        self.bytes_read += len(content)
        for secret, forms in needles.items():
            for form in forms:
                if form in content:
                    self.found.append(f"{name}: {secret} ({form[:12]!r}...)")
