"""Where the library keeps what it makes: the demo corpus, the demo model and its index.

``RETRIEVAL_HOME`` (environment variable) overrides the default ``~/.cache/retrieval``.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The library's home folder: ``$RETRIEVAL_HOME`` or ``~/.cache/retrieval``."""
    return Path(os.environ.get("RETRIEVAL_HOME", Path.home() / ".cache" / "retrieval")).expanduser()


def demo_corpus_dir() -> Path:
    """Where ``make demo`` builds the demo corpus."""
    return home() / "demo" / "corpus"


def demo_run_dir() -> Path:
    """Where ``make demo`` trains the demo model."""
    return home() / "demo" / "run"


def demo_index_path() -> Path:
    """Where ``make demo`` writes the demo catalogue's index (used by ``retrieval.search``)."""
    return home() / "demo" / "index"
