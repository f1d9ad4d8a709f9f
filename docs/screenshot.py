"""The README's screenshots of `retrieval serve`: the page after typing "dreamy", and the catalogue map.

    PYTHONPATH=. .venv/bin/python docs/screenshot.py            # the `make demo` index → docs/serve*.png
    PYTHONPATH=. .venv/bin/python docs/screenshot.py INDEX

Drives Debian's chromium through playwright, as tests/web/test_browser.py does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import retrieval
from retrieval.web import create_app, running

DOCS = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    retriever = retrieval.load(argv[0] if argv else None)
    with running(create_app(retriever)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.fill("#q", "dreamy")
        page.press("#q", "Enter")
        page.wait_for_function("() => document.querySelector('#status').textContent.includes('results for')")
        page.locator("#results .hit").first.locator("button.zero-shot").click()
        page.wait_for_selector(".zero-shot-tags")
        page.screenshot(path=str(DOCS / "serve.png"))
        page.click("#tab-map")
        page.wait_for_function("() => document.querySelectorAll('#map circle').length > 0")
        page.locator("#map circle").nth(10).dispatch_event("click")  # points overlap: no pointer hit test
        page.wait_for_timeout(500)
        page.screenshot(path=str(DOCS / "serve_map.png"))
        browser.close()
    print(f"wrote {DOCS / 'serve.png'} and {DOCS / 'serve_map.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
