"""The page in a real browser: Debian's chromium driven by playwright (never `playwright install`; `make install`
installs both). Type "dreamy", see results, play one, "more like this", drop a file, open the map."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

import retrieval

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
TIMEOUT_MS = 60_000  # a query or a decode on a busy 2-core machine


@pytest.fixture(scope="module")
def page(web_url: str):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is installed by `make install`")
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium (apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(web_url)
        yield page
        browser.close()
        assert not errors, errors


def _wait_for_status(page, text: str) -> None:
    # a function, not an expression string: the page's Content-Security-Policy forbids eval, and stays on here
    page.wait_for_function("(text) => document.querySelector('#status').textContent.includes(text)", arg=text)


def _search(page, text: str) -> None:
    page.fill("#q", text)
    page.press("#q", "Enter")
    _wait_for_status(page, "results for")


def test_type_dreamy_see_results_and_play_the_first(page, web_index: Path) -> None:
    _search(page, "dreamy")
    hits = page.locator("#results .hit")
    assert hits.count() >= 5
    expected = retrieval.load(web_index).search("dreamy", k=5)
    shown = [hits.nth(i).get_attribute("data-track-id") for i in range(5)]
    assert shown == [hit.track_id for hit in expected]
    first = hits.first
    assert first.locator(".title").inner_text() == expected[0].title
    assert expected[0].artist in first.locator(".meta").inner_text()
    assert page.locator("#matched .tag.matched").count() >= 1
    audio = first.locator("audio")
    # press play on the element's own controls (a real click: a user gesture, as the autoplay policy wants)
    box = audio.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + box["height"] / 2)
    page.wait_for_function("(a) => !a.paused && a.currentTime > 0.3", arg=audio.element_handle())
    before = audio.evaluate("a => a.currentTime")
    page.wait_for_timeout(600)
    assert audio.evaluate("a => a.currentTime") > before
    audio.evaluate("a => a.pause()")


def test_more_like_this(page, web_index: Path) -> None:
    _search(page, "dreamy")
    first = page.locator("#results .hit").first
    source = first.get_attribute("data-track-id")
    first.locator("button.more").click()
    _wait_for_status(page, "tracks like")
    shown = page.locator("#results .hit")
    similar = retrieval.load(web_index).similar(source, k=shown.count())
    assert [shown.nth(i).get_attribute("data-track-id") for i in range(shown.count())] == [
        hit.track_id for hit in similar]
    assert source not in [hit.track_id for hit in similar]


def test_drop_a_file_finds_its_track(page, web_index: Path) -> None:
    catalogue = retrieval.load(web_index).index.catalogue
    track = catalogue.index[7]
    data = base64.b64encode(Path(catalogue.loc[track, "audio_path"]).read_bytes()).decode()
    transfer = page.evaluate_handle("""([data, name]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type: "audio/ogg" }));
        return transfer;
    }""", [data, "dropped.ogg"])
    page.dispatch_event("#drop", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    _wait_for_status(page, "sound like")
    assert page.locator("#results .hit").first.get_attribute("data-track-id") == track


def test_open_the_map_colour_it_and_play_a_point(page, web_index: Path) -> None:
    retriever = retrieval.load(web_index)
    page.click("#tab-map")
    points = page.locator("#map circle")
    page.wait_for_function("(n) => document.querySelectorAll('#map circle').length === n", arg=len(retriever.index))
    assert page.locator("#category").input_value() == "genre"
    genres = page.locator("#legend li").all_inner_texts()
    page.select_option("#category", "instrument")
    page.wait_for_function("(old) => document.querySelector('#legend').innerText !== old",
                           arg="\n".join(genres))
    instruments = {tag for tag, category in zip(retriever.run.vocabulary.tags, retriever.run.vocabulary.categories,
                                                strict=True) if category == "instrument"}
    legend = [line.rsplit(" (", 1)[0] for line in page.locator("#legend li").all_inner_texts()]
    assert legend and set(legend) <= instruments
    point = points.last  # drawn last, so no other point covers it
    track = point.get_attribute("data-track-id")
    point.click()
    player = page.locator("#map-player")
    page.wait_for_function("(a) => !a.paused && a.currentTime > 0.2", arg=player.element_handle())
    assert player.evaluate("a => a.src").endswith(f"/api/tracks/{track}/audio")
    assert retriever.index.catalogue.loc[track, "title"] in page.locator("#map-track").inner_text()
