"""MSD-style identifiers for the demo corpus, deterministic from the seed.

Real MSD song ids are ``"SO"`` + 16 upper-case letters/digits (``SOMZWCG12A8C13C480``) and track ids
``"TR"`` + 16 (``TRAAAAW128F429D538``). Demo ids have the same shape; they are derived by hashing
``(seed, key)``, so a track keeps its ids however the build is scheduled and whatever else is
built, and different seeds give different ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

ID_BODY_LENGTH = 16
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
SONG_PREFIX = "SO"
TRACK_PREFIX = "TR"


def msd_id(prefix: str, seed: int, key: str, salt: int = 0) -> str:
    """``prefix`` + 16 characters of ``[A-Z0-9]`` derived from ``blake2b(seed, key, salt)``.

    Example:
        >>> len(msd_id("SO", 0, "oneills1850/0001-0050.abc#3/0"))
        18
    """
    digest = hashlib.blake2b(f"{prefix}|{seed}|{salt}|{key}".encode(), digest_size=ID_BODY_LENGTH).digest()
    return prefix + "".join(ALPHABET[b % len(ALPHABET)] for b in digest)


def unique_ids(prefix: str, seed: int, keys: Sequence[str]) -> list[str]:
    """One id per key, all distinct (a vanishingly unlikely collision re-salts the later key).

    Raises:
        ValueError: ``keys`` has duplicates.
    """
    if len(set(keys)) != len(keys):
        raise ValueError("keys must be unique")
    seen: set[str] = set()
    out = []
    for key in keys:
        salt = 0
        value = msd_id(prefix, seed, key)
        while value in seen:
            salt += 1
            value = msd_id(prefix, seed, key, salt)
        seen.add(value)
        out.append(value)
    return out
