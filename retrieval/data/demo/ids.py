"""MSD-style identifiers for the demo corpus, deterministic from the seed.

Real MSD song ids are ``"SO"`` + 16 upper-case letters/digits (``SOMZWCG12A8C13C480``) and track ids
``"TR"`` + 16 (``TRAAAAW128F429D538``). Demo ids have the same shape; they are derived by hashing
``(seed, key)``, so a track keeps its ids however the build is scheduled and whatever else is
built, and different seeds give different ids.
"""

from __future__ import annotations

import hashlib

ID_BODY_LENGTH = 16
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
SONG_PREFIX = "SO"
TRACK_PREFIX = "TR"


def msd_id(prefix: str, seed: int, key: str) -> str:
    """``prefix`` + 16 characters of ``[A-Z0-9]`` derived from ``blake2b(prefix, seed, key)``.

    Example:
        >>> len(msd_id("SO", 0, "oneills1850/0001-0050.abc#3/0"))
        18
    """
    digest = hashlib.blake2b(f"{prefix}|{seed}|{key}".encode(), digest_size=ID_BODY_LENGTH).digest()
    return prefix + "".join(ALPHABET[b % len(ALPHABET)] for b in digest)
