"""The JSON API over a real socket: search, upload, similar, tags, the map, audio with Range; and every way a
request is refused (unknown ids, ``../`` tricks, oversized queries and uploads: 4xx JSON), no CORS."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np
import pytest

import retrieval

pytestmark = pytest.mark.slow


def request(url: str, method: str = "GET", path: str = "/", body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One raw HTTP request (http.client sends the path as given: no ``..`` normalisation)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def get_json(url: str, path: str, **options) -> tuple[int, dict]:
    status, headers, data = request(url, path=path, **options)
    assert headers["content-type"].startswith("application/json"), (path, headers)
    return status, json.loads(data)


def test_text_search_answers_the_libraries_hits_with_audio_urls(web_url: str, web_index: Path) -> None:
    status, body = get_json(web_url, "/api/search?q=dreamy&k=8")
    assert status == 200 and len(body["hits"]) == 8 and body["elapsed_ms"] > 0
    expected = retrieval.load(web_index).search("dreamy", k=8)
    assert [hit["track_id"] for hit in body["hits"]] == [hit.track_id for hit in expected]
    np.testing.assert_allclose([hit["score"] for hit in body["hits"]], [hit.score for hit in expected], atol=1e-5)
    first = body["hits"][0]
    assert first["title"] and first["artist"] and first["audio_url"] == f"/api/tracks/{first['track_id']}/audio"
    matched = {tag["tag"] for tag in body["matched_tags"]}
    assert all(set(hit["matched"]) <= matched & set(hit["tags"]) for hit in body["hits"])
    assert any(hit["matched"] for hit in body["hits"])


def test_audio_is_streamed_with_range_requests(web_url: str, web_index: Path) -> None:
    hit = get_json(web_url, "/api/search?q=dreamy&k=1")[1]["hits"][0]
    file = Path(retrieval.load(web_index).index.catalogue.loc[hit["track_id"], "audio_path"])
    status, headers, data = request(web_url, path=hit["audio_url"])
    assert status == 200 and data == file.read_bytes() and headers["accept-ranges"] == "bytes"
    assert headers["content-type"] == "audio/ogg"
    status, headers, data = request(web_url, path=hit["audio_url"], headers={"Range": "bytes=100-199"})
    assert status == 206 and data == file.read_bytes()[100:200]
    assert headers["content-range"] == f"bytes 100-199/{file.stat().st_size}"


def test_similar_tags_and_the_map(web_url: str, web_index: Path) -> None:
    retriever = retrieval.load(web_index)
    track = retriever.index.ids[3]
    status, body = get_json(web_url, f"/api/tracks/{quote(track, safe='')}/similar?k=5")
    assert status == 200 and body["track"]["track_id"] == track
    assert [hit["track_id"] for hit in body["hits"]] == [hit.track_id for hit in retriever.similar(track, k=5)]
    status, body = get_json(web_url, f"/api/tracks/{track}/tags?k=4")
    assert status == 200 and [t["tag"] for t in body["tags"]] == [t for t, _ in retriever.tag_track(track, k=4)]
    # the model's similarity s of each tag with the track's indexed vector, best first among all tags
    s = retriever.tag_vectors() @ retriever.index.vectors_of([track])[0]
    names = retriever.run.vocabulary.tags
    np.testing.assert_allclose([t["score"] for t in body["tags"]], [s[names.index(t["tag"])] for t in body["tags"]],
                               atol=1e-5)
    assert body["tags"][0]["score"] == pytest.approx(s.max(), abs=1e-5)
    status, body = get_json(web_url, "/api/map?category=genre")
    assert status == 200 and body["category"] == "genre" and "genre" in body["categories"]
    points = body["points"]
    assert sorted(p["track_id"] for p in points) == sorted(retriever.index.ids.tolist())
    xy = np.array([[p["x"], p["y"]] for p in points])
    assert np.abs(xy).max() == pytest.approx(1.0, abs=1e-4) and np.unique(xy, axis=0).shape[0] > len(points) // 2
    genres = {tag for tag, category in zip(retriever.run.vocabulary.tags, retriever.run.vocabulary.categories,
                                           strict=True) if category == "genre"}
    assert {p["label"] for p in points} <= genres
    # a track's own genre tag colours it; only tracks without one are labelled by the nearest genre tag
    own = {p["track_id"]: p for p in points}
    for track_id, tags in retriever.index.catalogue["tags"].items():
        mine = [tag for tag in tags if tag in genres]
        assert own[track_id]["predicted"] == (not mine) and (not mine or own[track_id]["label"] == mine[0])


def test_search_by_an_uploaded_file_finds_that_track(web_url: str, web_index: Path) -> None:
    catalogue = retrieval.load(web_index).index.catalogue
    track = catalogue.index[5]
    data = Path(catalogue.loc[track, "audio_path"]).read_bytes()
    status, headers, body = request(web_url, "POST", "/api/search/audio?name=mine.ogg&k=3", body=data)
    answer = json.loads(body)
    assert status == 200 and answer["hits"][0]["track_id"] == track, answer


@pytest.mark.parametrize("path, status, message", [
    ("/api/tracks/../../etc/passwd/audio", 404, "unknown track id"),
    ("/api/tracks/..%2F..%2Fetc%2Fpasswd/audio", 404, "unknown track id"),
    ("/api/tracks/%2Fetc%2Fpasswd/audio", 404, "unknown track id"),
    ("/api/tracks/NO-SUCH-TRACK/audio", 404, "unknown track id"),
    ("/api/tracks/NO-SUCH-TRACK/similar", 404, "unknown track id"),
    ("/api/tracks/NO-SUCH-TRACK/tags", 404, "unknown track id"),
    ("/etc/passwd", 404, "no such page"),
    ("/static/../app.py", 404, "no such page"),
    ("/api/search?q=" + "a" * 201, 400, "query too long"),
    ("/api/search?q=", 400, "empty query"),
    ("/api/search?q=dreamy&k=100000", 400, "k must be"),
    ("/api/search?q=dreamy&k=-1", 400, "k must be"),
    ("/api/map?category=nope", 400, "unknown category"),
    ("/api/map?method=umap", 400, "unknown method"),
])
def test_bad_requests_get_4xx_json(web_url: str, path: str, status: int, message: str) -> None:
    got, body = get_json(web_url, path)
    assert (got, body["status"]) == (status, status) and message in body["error"], body
    assert "root:" not in json.dumps(body)


def test_uploads_over_the_limit_empty_or_undecodable_are_refused(web_url: str) -> None:
    big = b"\0" * (2**20 + 1)
    status, _, body = request(web_url, "POST", "/api/search/audio?name=big.wav", body=big)
    assert status == 413 and "too large" in json.loads(body)["error"]
    # a body streamed without Content-Length (http.client sends an iterable chunked) is counted as it arrives
    status, _, body = request(web_url, "POST", "/api/search/audio?name=big.wav", body=iter([big[:2**19]] * 3))
    assert status == 413 and "too large" in json.loads(body)["error"]
    status, _, body = request(web_url, "POST", "/api/search/audio?name=x.ogg", body=b"")
    assert status == 400 and "empty upload" in json.loads(body)["error"]
    status, _, body = request(web_url, "POST", "/api/search/audio?name=noise.mp3", body=b"not audio at all" * 50)
    error = json.loads(body)["error"]
    assert status == 422 and error.startswith("noise.mp3: cannot decode it") and "retrieval-upload" not in error


def test_no_cors_and_only_loopback_host_names(web_url: str) -> None:
    status, headers, _ = request(web_url, path="/api/search?q=dreamy", headers={"Origin": "http://evil.example"})
    assert status == 200 and not any(name.startswith("access-control-") for name in headers)
    status, headers, _ = request(web_url, "OPTIONS", "/api/search?q=dreamy",
                                 headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"})
    assert status == 405 and not any(name.startswith("access-control-") for name in headers)
    # a page on another site that rebinds its own DNS name to 127.0.0.1 sends its own Host header: refused
    status, _, _ = request(web_url, path="/api/search?q=dreamy", headers={"Host": "evil.example"})
    assert status == 400
    status, headers, page = request(web_url, path="/")
    assert status == 200 and b'<script src="/static/app.js">' in page and b"http" not in page.split(b"<body>")[1]
    assert "default-src 'self'" in headers["content-security-policy"]


def test_serve_binds_loopback_by_default_and_says_what_to_build(tmp_path: Path, monkeypatch, capsys) -> None:
    from retrieval.cli import build_parser, main

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.index, args.model) == ("127.0.0.1", 8765, None, None)
    monkeypatch.setenv("RETRIEVAL_HOME", str(tmp_path))
    assert main(["serve"]) == 2 and "make demo" in capsys.readouterr().err
    assert main(["serve", "--index", str(tmp_path / "nothing")]) == 2
    assert "retrieval index AUDIO_DIR" in capsys.readouterr().err
