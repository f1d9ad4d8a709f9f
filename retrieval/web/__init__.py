"""The local web app: listen to search results, query by a dropped file, look at the catalogue as a map.

Modules:
    app         ``create_app(retriever)``: the Starlette app — the JSON API under ``/api`` and the page; ``serve``
                runs it on uvicorn (``retrieval serve``), ``running`` in a background thread (tests, notebooks).
                Safe by default: loopback only, audio addressed by track id, 4xx JSON errors, no CORS.
    projection  ``project`` and ``label_tracks``: the index vectors in 2-D (PCA, or t-SNE) and each track's
                label in a chosen tag category.
    static/     the one page (plain HTML, JS and CSS; nothing from a CDN).

Needs the ``web`` extra (``pip install 'retrieval[web]'``: starlette, uvicorn).
"""

from retrieval.web.app import create_app, running, serve

__all__ = ["create_app", "running", "serve"]
