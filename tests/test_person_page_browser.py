"""The person page end to end in a real headless Chromium: log in, search a person by
email from the header's search box, see the group with how each contact was linked, its
open review item and its history, ask why two contacts are one person; an unknown value
finds nobody. Nothing is written by looking. The screenshot is saved to
tests/artifacts/person_page.png."""
from __future__ import annotations

import threading

import pytest
from review_seed import PASSWORD, exact_only, identify, open_item, reviewer
from test_persons_api import table_counts
from test_review_ui_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, pytestmark  # noqa: F401  (the browser marks)
from werkzeug.serving import make_server

from reconcile.web import create_app


@pytest.fixture
def server(sqlite_db):
    """The real app on a free port over a group built by the exact rules: 1 and 2 share a
    phone, 3 (with 4) joins them when a request brings 1's email and 3's phone; a review
    between that group and Calvin's (5) is open."""
    app = create_app(exact_only(sqlite_db))
    rec = app.extensions["reconcile"]
    reviewer(rec.store, "alice")
    identify(rec, "lorraine@hillvalley.edu", "+14155552671", "Lorraine Baines")
    identify(rec, "lorraine.baines@twinpines.org", "+14155552671", "Lorraine Baines")
    identify(rec, "marty@hillvalley.edu", "+14155552672", "Marty McFly")
    identify(rec, "marty.mcfly@twinpines.org", "+14155552672", "Marty McFly")
    merged = identify(rec, "lorraine@hillvalley.edu", "+14155552672")
    assert merged["secondaryContactIds"] == [2, 3, 4]
    calvin = identify(rec, "calvin.klein@hillvalley.edu", "+14155552673", "Calvin Klein")
    item = open_item(rec.store, 1, calvin["primaryContactId"])
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", rec.store, item
    httpd.shutdown()
    thread.join(timeout=5)
    rec.store.dispose()


def test_a_reviewer_finds_a_person_and_sees_the_group_history_and_why(server):
    from playwright.sync_api import sync_playwright

    base, store, item = server
    before = table_counts(store)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

            page.goto(f"{base}/review/persons?q=marty@hillvalley.edu")
            assert "/review/login" in page.url  # the same login as the queue
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", PASSWORD)
            with page.expect_navigation():
                page.click("button[type=submit]")
            # one group holds the email: its page opens straight away
            assert page.url == f"{base}/review/persons/1"

            page.goto(f"{base}/review/")
            page.fill(".person-search input[name=q]", " Marty.McFly@TwinPines.org ")
            with page.expect_navigation():
                page.press(".person-search input[name=q]", "Enter")
            assert page.url == f"{base}/review/persons/1"
            assert page.locator("h1").first.inner_text().startswith("Person #1")
            rows = page.locator("#person-group tbody tr")
            assert rows.count() == 4
            assert [rows.nth(i).locator("td").first.inner_text().split()[0] for i in range(4)] == ["1", "2", "3", "4"]
            assert "marty.mcfly@twinpines.org" in page.locator("#person-group").inner_text()
            assert "exact" in rows.nth(2).inner_text()

            history = page.locator("#person-history tbody tr")
            texts = [history.nth(i).inner_text() for i in range(history.count())]
            assert sum(t.startswith(tuple("0123456789")) and "created" in t for t in texts) == 4
            assert any("demoted" in t and "#3" in t for t in texts)
            assert any("review_opened" in t for t in texts)
            assert page.locator(".pager").inner_text().startswith("7 change(s)")

            link = page.locator(f"#open-reviews a[href='/review/items/{item}']")
            assert link.count() == 1

            page.select_option("#why-form select", "4")
            with page.expect_navigation():
                page.click("#why-form button")
            chain = page.locator("#why-chain li")
            assert chain.count() >= 1
            assert "both hold the" in page.locator("#why-chain").inner_text()

            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "person_page.png"), full_page=True)

            page.goto(f"{base}/review/persons?q=nobody@hillvalley.edu")
            assert page.locator("#nothing-found").count() == 1
            assert problems == []
            missing = page.goto(f"{base}/review/persons/99999999999999999999")
            assert missing.status == 404 and "does not exist" in page.locator("main").inner_text()
        finally:
            browser.close()
    assert table_counts(store) == before
