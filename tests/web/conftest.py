"""The web app served on 127.0.0.1 over an index of the tiny corpus (built from the shared fixtures)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def web_index(tmp_path_factory: pytest.TempPathFactory, tiny_run: Path, tiny_corpus: Path) -> Path:
    from retrieval.index.build import index_corpus

    out = tmp_path_factory.mktemp("web") / "index"
    index_corpus(tiny_run, out, corpus_root=tiny_corpus, backend="exact", progress=False)
    return out


@pytest.fixture(scope="session")
def web_url(web_index: Path) -> Iterator[str]:
    """The base URL of the app over :func:`web_index`, with a 1 MiB upload limit (so the limit is testable)."""
    import retrieval
    from retrieval.web.app import LOOPBACK_HOSTS, create_app, running

    app = create_app(retrieval.load(web_index), max_upload_bytes=2**20, allowed_hosts=list(LOOPBACK_HOSTS))
    with running(app) as url:
        yield url
