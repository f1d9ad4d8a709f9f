"""The web app over a loaded retriever: a JSON API and one page (``retrieval serve``).

    GET  /                                 the page (static/index.html, app.js, style.css)
    GET  /api/info                         {"tracks", "model", "categories", "limits"}
    GET  /api/search?q=dreamy&k=10         text search → {"query", "terms", "matched_tags", "hits", "elapsed_ms"}
    POST /api/search/audio?name=F&k=10     the request body is an audio file → {"hits", "elapsed_ms"}
    GET  /api/tracks/{id}/similar?k=10     tracks nearest to an indexed track → {"track", "hits", ...}
    GET  /api/tracks/{id}/tags?k=10        zero-shot tags of an indexed track → {"track_id", "tags"}
    GET  /api/tracks/{id}/audio            the track's audio file (HTTP Range → 206 Partial Content)
    GET  /api/map?category=genre&method=pca   every indexed track in 2-D, labelled in the category

Each hit carries its catalogue metadata, the query's matched tags among its own (``matched``) and an
``audio_url``. The retriever is loaded once and stays warm; a query's server-side time is in ``elapsed_ms``
and in a ``Server-Timing`` header. The model runs under one lock (its thread settings are process-wide).

Safe by default:
- :func:`serve` binds 127.0.0.1 unless told otherwise, and then answers only requests addressed to a loopback
  name (a DNS-rebinding page cannot reach it);
- audio is served only for tracks of the index, by track id, from the path the catalogue records; no path from
  a request is ever opened (``/api/tracks/../../etc/passwd/audio`` is an unknown id: 404);
- unknown ids and routes → 404, bad or oversized parameters → 400, uploads over ``max_upload_bytes`` → 413,
  undecodable uploads → 422, all as ``{"error": ..., "status": ...}`` JSON;
- no CORS headers at all: other origins cannot read the API's answers.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from retrieval.errors import AudioError, RetrievalError, UnknownIdError

__all__ = ["MAX_K", "MAX_QUERY_CHARS", "MAX_UPLOAD_BYTES", "create_app", "running", "serve"]

STATIC = Path(__file__).with_name("static")
MAX_QUERY_CHARS = 200
"""Longest text query accepted (characters); longer ones get 400."""
MAX_K = 100
"""Most results one request may ask for."""
MAX_UPLOAD_BYTES = 50 * 2**20
"""Largest audio upload (bytes, 50 MiB: a 5-minute WAV); larger ones get 413."""
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
_UPLOAD_SUFFIX_CHARS = 5
_START_TIMEOUT_S = 30.0
# The page loads only its own files; audio comes from this server; nothing is framed by other sites.
_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}
mimetypes.add_type("audio/ogg", ".opus")
mimetypes.add_type("audio/mp4", ".m4a")
mimetypes.add_type("audio/flac", ".flac")


class _Refused(Exception):
    """A request the API answers with a 4xx JSON error."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Catalogue:
    """What the API looks up per track: the index's ids and the catalogue's metadata, made once."""

    def __init__(self, index):
        self.ids: list[str] = index.ids.tolist()
        self.row = {track_id: row for row, track_id in enumerate(self.ids)}
        catalogue = index.catalogue
        n = len(self.ids)

        def column(name: str) -> list:
            if catalogue is None or name not in catalogue.columns:
                return [None] * n
            return catalogue[name].reindex(self.ids).tolist()

        from retrieval.index.catalogue import tag_tuple, text_or_none

        self.audio_paths = [text_or_none(path) for path in column("audio_path")]
        self.tags = [tag_tuple(tags) for tags in column("tags")]
        self.titles = [text_or_none(title) for title in column("title")]
        self.artists = [text_or_none(artist) for artist in column("artist")]

    def audio_url(self, track_id: str) -> str | None:
        row = self.row.get(track_id)
        return None if row is None or self.audio_paths[row] is None else f"/api/tracks/{quote(track_id, safe='')}/audio"

    def require(self, track_id: str) -> int:
        if track_id not in self.row:
            raise _Refused(404, f"unknown track id {track_id[:80]!r}")
        return self.row[track_id]


def create_app(retriever, *, max_upload_bytes: int = MAX_UPLOAD_BYTES, allowed_hosts: list[str] | None = None):
    """The Starlette app over ``retriever`` (a :class:`~retrieval.api.Retriever` or a
    :class:`~retrieval.pretrained.retriever.PretrainedRetriever` with an index).

    Args:
        retriever: a loaded retriever with an index.
        max_upload_bytes: largest audio upload accepted.
        allowed_hosts: the Host names answered (None: any); :func:`serve` passes the loopback names when bound
            to loopback.

    Raises:
        RetrievalError: the retriever has no index.
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    if getattr(retriever, "index", None) is None:
        raise RetrievalError("this retriever has no index to serve; build one with "
                             "`retrieval index AUDIO_DIR --model RUN --out INDEX` and serve it with --index INDEX")
    catalogue = _Catalogue(retriever.index)
    lock = threading.Lock()
    maps: dict[tuple[str, str], dict] = {}  # (method, category) → the map's JSON
    projections: dict = {}  # method → (n, 2) coordinates
    tag_scores: list = []  # [(tags, categories, scores)], computed on the first map

    def timed(function, *args) -> tuple[Any, float]:
        with lock:
            start = time.perf_counter()
            value = function(*args)
            return value, (time.perf_counter() - start) * 1e3

    def answer(payload: dict, elapsed_ms: float) -> JSONResponse:
        payload["elapsed_ms"] = round(elapsed_ms, 3)
        return JSONResponse(payload, headers={"server-timing": f"app;dur={elapsed_ms:.3f}"})

    def hit_json(hit, matched: set[str] = frozenset()) -> dict:
        return {"track_id": hit.track_id, "score": round(float(hit.score), 6), "title": hit.title,
                "artist": hit.artist, "album": getattr(hit, "album", None), "genre": getattr(hit, "genre", None),
                "year": getattr(hit, "year", None), "tags": list(hit.tags),
                "matched": [tag for tag in hit.tags if tag in matched], "audio_url": catalogue.audio_url(hit.track_id)}

    def search(request):
        query = request.query_params.get("q", "").strip()
        if not query:
            raise _Refused(400, "empty query: give some words, e.g. ?q=dreamy")
        if len(query) > MAX_QUERY_CHARS:
            raise _Refused(400, f"query too long ({len(query)} characters; at most {MAX_QUERY_CHARS})")
        result, elapsed = timed(retriever.search, query, _k(request))
        matched = {tag for tag, _ in result.matched_tags}
        return answer({"query": result.query, "terms": result.terms,
                       "matched_tags": [{"tag": tag, "score": round(float(score), 6)}
                                        for tag, score in result.matched_tags],
                       "hits": [hit_json(hit, matched) for hit in result]}, elapsed)

    async def search_audio(request):
        k = _k(request)
        name = request.query_params.get("name", "upload")[:200]
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_upload_bytes:
            raise _Refused(413, f"upload too large ({int(declared):,} bytes; at most {max_upload_bytes:,})")
        suffix = Path(name).suffix.lower()
        suffix = suffix if suffix[1:].isalnum() and len(suffix) <= _UPLOAD_SUFFIX_CHARS else ""
        handle = tempfile.NamedTemporaryFile(prefix="retrieval-upload-", suffix=suffix, delete=False)
        try:
            size = 0
            with handle:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_upload_bytes:
                        raise _Refused(413, f"upload too large (over {max_upload_bytes:,} bytes)")
                    handle.write(chunk)
            if size == 0:
                raise _Refused(400, "empty upload: send the audio file as the request body")
            try:
                hits, elapsed = await run_in_threadpool(timed, retriever.search_by_audio, handle.name, k)
            except AudioError as error:
                raise _Refused(422, str(error).replace(handle.name, name)) from error
        finally:
            os.unlink(handle.name)
        return answer({"query": name, "hits": [hit_json(hit) for hit in hits]}, elapsed)

    def similar(request):
        track_id = request.path_params["track_id"]
        row = catalogue.require(track_id)
        hits, elapsed = timed(retriever.similar, track_id, _k(request))
        track = {"track_id": track_id, "title": catalogue.titles[row], "artist": catalogue.artists[row],
                 "audio_url": catalogue.audio_url(track_id)}
        return answer({"track": track, "hits": [hit_json(hit) for hit in hits]}, elapsed)

    def tags(request):
        track_id = request.path_params["track_id"]
        catalogue.require(track_id)
        found, elapsed = timed(retriever.tag_track, track_id, _k(request))
        return answer({"track_id": track_id, "tags": [{"tag": tag, "score": round(float(score), 6)}
                                                      for tag, score in found]}, elapsed)

    def audio(request):
        track_id = request.path_params["track_id"]
        path = catalogue.audio_paths[catalogue.require(track_id)]
        if path is None or not Path(path).is_file():
            raise _Refused(404, f"track {track_id[:80]!r} has no audio file on this machine")
        media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type)

    def catalogue_map(request):
        from retrieval.web.projection import PROJECTIONS, label_tracks, project

        method = request.query_params.get("method", "pca")
        if method not in PROJECTIONS:
            raise _Refused(400, f"unknown method {method[:40]!r}; use one of {', '.join(PROJECTIONS)}")
        with lock:
            if not tag_scores:
                tag_scores.append(retriever.track_tag_scores())
            names, categories, scores = tag_scores[0]
            category = request.query_params.get("category", categories[0])
            if category not in categories:
                raise _Refused(400, f"unknown category {category[:40]!r}; categories: "
                                    f"{', '.join(dict.fromkeys(categories))}")
            key = (method, category)
            if key not in maps:
                if method not in projections:
                    index = retriever.index
                    projections[method] = project(index.vectors_of(catalogue.ids), method)
                points = projections[method]
                labels, predicted = label_tracks(category, names, categories, scores, catalogue.tags)
                maps[key] = {"method": method, "category": category,
                             "categories": list(dict.fromkeys(categories)),
                             "points": [{"track_id": track_id, "x": round(float(x), 5), "y": round(float(y), 5),
                                         "label": label, "predicted": guess, "title": title, "artist": artist,
                                         "audio_url": catalogue.audio_url(track_id)}
                                        for track_id, (x, y), label, guess, title, artist in zip(
                                            catalogue.ids, points.tolist(), labels, predicted, catalogue.titles,
                                            catalogue.artists, strict=True)]}
        return JSONResponse(maps[key])

    def info(request):
        categories = (list(dict.fromkeys(retriever.run.vocabulary.categories)) if hasattr(retriever, "run")
                      else ["tag"])
        model = str(retriever.run.folder) if hasattr(retriever, "run") else retriever.name
        return JSONResponse({"tracks": len(catalogue.ids), "model": model, "categories": categories,
                             "limits": {"query_chars": MAX_QUERY_CHARS, "k": MAX_K, "upload_bytes": max_upload_bytes}})

    def page(request):
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def refused(request, error: _Refused):
        return JSONResponse({"error": str(error), "status": error.status}, status_code=error.status)

    async def http_error(request, error: HTTPException):
        message = {404: "no such page or API route", 405: "method not allowed"}.get(error.status_code, error.detail)
        return JSONResponse({"error": message, "status": error.status_code}, status_code=error.status_code,
                            headers=getattr(error, "headers", None))

    async def unknown_id(request, error: UnknownIdError):
        return JSONResponse({"error": str(error).strip('"'), "status": 404}, status_code=404)

    async def bad_input(request, error: RetrievalError):
        return JSONResponse({"error": str(error), "status": 400}, status_code=400)

    track = "/api/tracks/{track_id:path}"
    routes = [
        Route("/", page),
        Route("/api/info", info),
        Route("/api/search", search),
        Route("/api/search/audio", search_audio, methods=["POST"]),
        Route(f"{track}/similar", similar),
        Route(f"{track}/tags", tags),
        Route(f"{track}/audio", audio),
        Route("/api/map", catalogue_map),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]
    middleware = [Middleware(_SecurityHeaders)]
    if allowed_hosts:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    return Starlette(routes=routes, middleware=middleware, exception_handlers={
        _Refused: refused, HTTPException: http_error, UnknownIdError: unknown_id, RetrievalError: bad_input})


class _SecurityHeaders:
    """ASGI middleware adding :data:`_SECURITY_HEADERS` to every response (streamed ones too)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name.encode(), value.encode()) for name, value in _SECURITY_HEADERS.items()
                         if name.encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _k(request) -> int:
    """The ``k`` query parameter: an integer in [1, MAX_K] (default 10)."""
    text = request.query_params.get("k", "10")
    if not text.isdigit() or not 1 <= int(text) <= MAX_K:
        raise _Refused(400, f"k must be an integer from 1 to {MAX_K}, got {text[:20]!r}")
    return int(text)


def serve(retriever, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, **options) -> None:
    """Serve :func:`create_app` over ``retriever`` on uvicorn until interrupted.

    Bound to a loopback address (the default), only requests addressed to a loopback name are answered. One
    query is run before the server starts, so the first user's is warm. ``options`` go to :func:`create_app`.
    """
    import uvicorn

    loopback = host in LOOPBACK_HOSTS
    app = create_app(retriever, allowed_hosts=list(LOOPBACK_HOSTS) if loopback else None, **options)
    retriever.search("warm up", k=1)  # the first query builds the text encoder's session (~1 s): not the user's
    uvicorn.run(app, host=host, port=port, log_level="warning")


@contextlib.contextmanager
def running(app, host: str = DEFAULT_HOST, port: int = 0) -> Iterator[str]:
    """Run ``app`` on uvicorn in a background thread (port 0: a free one) and yield its base URL; it stops when
    the block ends. For tests, benchmarks and notebooks.

    Example:
        >>> with running(create_app(retriever)) as url:               # doctest: +SKIP
        ...     urllib.request.urlopen(f"{url}/api/search?q=dreamy")
    """
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="retrieval-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the web app did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join()
