"""net.signing: signed streams: who sent a message, not only who may publish on a subject.

    send --key FILE:          every message (data, chunks, end, cut, heartbeats) gets
                              Vflow-Key: ID and Vflow-Sig: HMAC-SHA256(key, what is signed)
    recv/worker --key FILE:   a message without a valid signature by a key of FILE is
                              refused (counted, one line), before anything else reads it

What is signed: the subject, every Vflow-* header but Vflow-Sig (sorted by name), then
the body. The message id (Nats-Msg-Id) is not: a dead letter put back by `recv --dead
--replay` keeps its sender's signature. A worker with --key checks its input and signs
its output with the first key of its file.

A key file holds one key a line (blank lines and lines starting with # are skipped), 16
characters at least. The first key signs; all of them are accepted, so that two keys
overlap while one replaces the other. A key's id is the first 8 hex digits of its SHA-256:
it names the key without telling it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from vflow_cli.errors import StageError

KEY_ID = "Vflow-Key"
SIG = "Vflow-Sig"
MIN_KEY = 16  # characters


class Keys:
    def __init__(self, keys: list[bytes], source: str = "") -> None:
        if not keys:
            raise StageError(f"no key in {source or 'the key file'}")
        self._keys = {key_id(k): k for k in keys}
        self._signing = keys[0]
        self.id = key_id(keys[0])

    def sign(self, subject: str, headers: dict[str, str], body: Any = b"") -> None:
        """Add Vflow-Key and Vflow-Sig to headers (in place)."""
        headers[KEY_ID] = self.id
        headers[SIG] = _mac(self._signing, subject, headers, body)

    def check(self, subject: str, headers: dict[str, str] | None, body: Any) -> bool:
        """Whether the message is signed by one of our keys."""
        if not headers:
            return False
        key = self._keys.get(headers.get(KEY_ID, ""))
        sig = headers.get(SIG)
        if key is None or sig is None:
            return False
        return hmac.compare_digest(_mac(key, subject, headers, body), sig)


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def _mac(key: bytes, subject: str, headers: dict[str, str], body: Any) -> str:
    signed = sorted((k, v) for k, v in headers.items() if k.startswith("Vflow-") and k != SIG)
    text = subject + "\n" + "".join(f"{k}:{str(v).strip()}\n" for k, v in signed) + "\n"
    mac = hmac.new(key, text.encode(), hashlib.sha256)
    mac.update(body)
    return mac.hexdigest()


def load(path: str | None) -> Keys | None:
    """The keys of a key file (None: no --key)."""
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            text = file.read(1 << 16)
    except OSError as exc:
        raise StageError(f"cannot read the key file {path}: {exc.strerror}") from None
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(b"#"):
            continue
        if len(line) < MIN_KEY:
            raise StageError(
                f"{path}, line {number}: a key of {len(line)} characters is too short "
                f"(at least {MIN_KEY}; `openssl rand -hex 32` makes a good one)"
            )
        keys.append(line)
    if os.name == "posix" and os.stat(path).st_mode & 0o077:
        from vflow_cli.console import log

        log.warning("the key file %s can be read by other users (chmod 600 %s)", path, path)
    return Keys(keys, path)
