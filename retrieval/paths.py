"""Where the library keeps what it makes: the demo corpus, the demo model and its index.

``RETRIEVAL_HOME`` (environment variable) overrides the default ``~/.cache/retrieval``. Every function takes an
explicit ``root`` too (e.g. ``retrieval demo --home DIR``), so nothing needs to set the environment.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The library's home folder: ``$RETRIEVAL_HOME`` or ``~/.cache/retrieval``."""
    return Path(os.environ.get("RETRIEVAL_HOME", Path.home() / ".cache" / "retrieval")).expanduser()


def _root(root: str | os.PathLike[str] | None) -> Path:
    return home() if root is None else Path(root).expanduser()


def demo_corpus_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Where ``make demo`` builds the demo corpus: ``ROOT/demo/corpus`` (``ROOT``: given, else :func:`home`)."""
    return _root(root) / "demo" / "corpus"


def demo_run_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Where ``make demo`` trains the demo model: ``ROOT/demo/run``."""
    return _root(root) / "demo" / "run"


def demo_index_path(root: str | os.PathLike[str] | None = None) -> Path:
    """Where ``make demo`` writes the demo catalogue's index (used by ``retrieval.search``): ``ROOT/demo/index``."""
    return _root(root) / "demo" / "index"


def demo_other_render_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Where the demo corpus's generalisation set goes (:mod:`retrieval.data.demo.other_render`):
    ``ROOT/demo/other_render``."""
    return _root(root) / "demo" / "other_render"
