"""Authenticated files: an optional HMAC-SHA256 tag (RFC 2104, FIPS 198-1) over a whole file.

The CRC32 at the end of every ``.mmsl`` file catches *accidents*: a flipped bit, a truncated
copy. It resists no one: anyone who edits a file can recompute it. A link where someone may
alter files on purpose needs a key that only the sender and the receiver hold: with a key, the
sender appends ``HMAC-SHA256(key, every byte before the tag)`` (32 bytes) and the receiver refuses
a file whose tag does not match, so edited side info, swapped frames or a file from an impostor
are refused. The tag does not hide the content (nothing is encrypted) and does not stop replay
of a whole old file (the header's first sequence number lets a receiver check continuity).

A key is at least 16 bytes of secret, random data, read from a file (``--key-file``); make one
with ``head -c 32 /dev/urandom > link.key`` and copy it to both ends over a trusted channel.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

TAG_BYTES = 32  # HMAC-SHA256
MIN_KEY_BYTES = 16


def check_key(key: bytes) -> bytes:
    """Return ``key`` as bytes after checking it is long enough; ValueError otherwise."""
    if not isinstance(key, (bytes, bytearray)):
        raise ValueError(f"an HMAC key must be bytes, got {type(key).__name__}")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"an HMAC key of {len(key)} bytes is too short (at least {MIN_KEY_BYTES}); make one "
            "with `head -c 32 /dev/urandom > link.key`"
        )
    return bytes(key)


def read_key_file(path: str | Path) -> bytes:
    """The key held in ``path`` (its raw bytes, at least 16 of them)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"no key file at {path}; make one with `head -c 32 /dev/urandom > {path}` and give "
            "the same file to the sender and the receiver"
        )
    return check_key(path.read_bytes())


def tag(key: bytes, body: bytes) -> bytes:
    """The 32-byte HMAC-SHA256 of ``body`` under ``key``."""
    return hmac.new(check_key(key), body, hashlib.sha256).digest()


def verify(key: bytes, body: bytes, received: bytes) -> bool:
    """Whether ``received`` is the tag of ``body`` under ``key`` (constant-time comparison)."""
    return hmac.compare_digest(tag(key, body), bytes(received))


__all__ = ["MIN_KEY_BYTES", "TAG_BYTES", "check_key", "read_key_file", "tag", "verify"]
