"""The review queue at scale in a real headless Chromium: every page fits from 1024x768 to
1920x1080 (no horizontal overflow, no cell or badge narrower than its text, emails wrap
only after ``@`` and dots), a three-group case is decided from the keyboard in one go
(then the database and the labels are checked), and items whose groups merge by other
means leave the queue. One server and one browser for the module.

The list, a case and the admin page are saved under tests/artifacts/; they become the
README's docs/review-*.png when missing or when RECONCILE_UPDATE_SCREENSHOTS is set."""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from conftest import assert_sound, rows
from review_seed import EVIDENCE, MATCH_WEIGHT, PASSWORD, exact_only, identify, reviewer
from werkzeug.serving import make_server

from reconcile.config import Settings
from reconcile.store import ContactTx
from reconcile.store.migrate import upgrade
from reconcile.store.pending import open_pending_merge
from reconcile.store.schema import cannot_link, contact, label, pending_merge
from reconcile.training.registry import ensure_default_registered
from reconcile.web import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
VIEWPORTS = [(1024, 768), (1920, 1080)]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason=f"Chromium is not installed at {CHROMIUM} (`make test` installs it: apt-get install chromium)",
    ),
]

#: what the page reports: the document's overflow, then each element narrower than its
#: content (a cell whose text sticks out, a badge whose letters stack), and each
#: unbreakable piece of an email or phone that was broken over two lines
MEASURE = """() => {
  const doc = document.documentElement;
  const narrow = [];
  for (const el of document.querySelectorAll('td, th, .tag, .count, button, .button, kbd, .status, .person-choice span')) {
    if (el.closest('details:not([open])')) continue;
    if (el.scrollWidth > el.clientWidth + 1) narrow.push(el.tagName + '.' + el.className + ': ' + el.textContent.trim().slice(0, 40));
  }
  for (const el of document.querySelectorAll('.tag, .count, kbd, .status')) {
    const lines = el.getClientRects().length;
    const line = parseFloat(getComputedStyle(el).lineHeight) || 20;
    if (lines > 1 || el.getBoundingClientRect().height > 2 * line) narrow.push('stacked: ' + el.textContent.trim());
  }
  const broken = [];
  for (const el of document.querySelectorAll('.nb')) {
    if (el.closest('details:not([open])')) continue;
    if (el.getClientRects().length > 1) broken.push(el.textContent);
  }
  return {overflow: doc.scrollWidth - doc.clientWidth, narrow, broken};
}"""


def _item(tx: ContactTx, a: int, b: int, score: float | None = 0.93, reason: str = "score", guard: str | None = None, evidence=None) -> int:
    return open_pending_merge(
        tx, a, b, reason=reason, guard=guard, contact_id=b, candidate_id=a, score=score,
        match_weight=MATCH_WEIGHT if score is not None else None, model_version="test-1",
        evidence=evidence if evidence is not None else EVIDENCE,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A queue with a three-group case, a pair with a 25-contact group and long emails,
    a guard item, and a pair that identify will merge; served by werkzeug in a thread."""
    url = f"sqlite:///{tmp_path_factory.mktemp('queue') / 'reconcile.db'}"
    upgrade(url)
    app = create_app(exact_only(url))
    rec = app.extensions["reconcile"]
    store = rec.store
    reviewer(store, "alice", admin=True)
    ensure_default_registered(store, rec.settings)  # the shipped model, for the admin page
    ids = lambda *people: [identify(rec, *p)["primaryContactId"] for p in people]  # noqa: E731
    a, b, c = ids(
        ("emma.oconnor@gmail.com", "+353851234567", "Emma O'Connor"),
        ("emma.o.connor.the.longest.mailbox.name@accounting.example-enterprises.co.uk", "+353851234568", "Emma O'Connor"),
        ("e.oconnor@outlook.ie", "+353851234569", "Emma OConnor"),
    )
    big = ids(("margaret.hamilton@mit-instrumentation-laboratory.edu", "+16175550100", "Margaret Hamilton"))[0]
    for n in range(1, 25):
        identify(rec, "margaret.hamilton@mit-instrumentation-laboratory.edu", f"+1617555{n:04d}", "Margaret Hamilton")
    (maggie,) = ids(("maggie.hamilton@apollo-guidance-computer.nasa.gov", "+16175550107", "Maggie Hamilton"))
    al, alex = ids(("al.king@hillvalley.edu", "+14155550123", "Al King"), ("alex.king@twinpines.org", "+14155550124", "Mary King"))
    d, e = ids(("doc.brown@hillvalley.edu", "+14155559001", "Emmett Brown"), ("emmett@twinpines.org", "+14155559002", "Emmett Brown"))

    def seed(tx: ContactTx) -> dict[str, int]:
        return {
            "ab": _item(tx, a, b, 0.97),
            "bc": _item(tx, b, c, 0.95),
            "ac": _item(tx, a, c, 0.91),
            "big": _item(tx, big, maggie, 0.9),
            "guard": _item(
                tx, al, alex, 0.42, reason="guard", guard="group-size",
                evidence={"guard": "group-size", "reason": "the merged group would hold 41 contacts (limit 40)"},
            ),
            "stale": _item(tx, d, e, 0.88),
        }

    items = store.write(seed)
    # the admin page as a worker serving the shipped model shows it (after seeding: its
    # scorer would have opened reviews of its own)
    serving = create_app(Settings(database_url=url))
    servers = [make_server("127.0.0.1", 0, served, threaded=True) for served in (app, serving)]
    threads = [threading.Thread(target=httpd.serve_forever, daemon=True) for httpd in servers]
    for thread in threads:
        thread.start()
    base, admin_base = (f"http://127.0.0.1:{httpd.server_port}" for httpd in servers)
    yield {"base": base, "admin_base": admin_base, "rec": rec, "items": items, "groups": (a, b, c)}
    for httpd, thread in zip(servers, threads):
        httpd.shutdown()
        thread.join(timeout=5)
    serving.extensions["reconcile"].store.dispose()
    store.dispose()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def _login(browser, base: str, width: int, height: int, page=None):
    page = page or browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{base}/review/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    return page


def _keep(name: str) -> None:
    """An artifact becomes the README's screenshot when missing, or when asked to."""
    target = ROOT / "docs" / name
    if not target.exists() or os.environ.get("RECONCILE_UPDATE_SCREENSHOTS"):
        shutil.copyfile(ARTIFACTS / name, target)


def test_every_page_fits_from_1024_to_1920_wide(site, browser):
    base, items = site["base"], site["items"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = {
        "list": "/review/",
        "case": f"/review/cases/{items['ab']}",
        "big item": f"/review/items/{items['big']}",
        "guard item": f"/review/items/{items['guard']}",
        "admin": "/review/admin/models",
    }
    assert_charts = "img[alt='pr_curve.svg of default']"
    for width, height in VIEWPORTS:
        page = _login(browser, base, width, height)
        _login(browser, site["admin_base"], width, height, page)
        try:
            for name, path in pages.items():
                page.goto((site["admin_base"] if name == "admin" else base) + path)
                found = page.evaluate(MEASURE)
                assert found == {"overflow": 0, "narrow": [], "broken": []}, (name, width, found)
                if name == "admin":  # the shipped model: its metrics and its charts, drawn
                    assert page.locator(assert_charts).evaluate("img => img.complete && img.naturalWidth > 0")
                    assert "0.9969" in page.inner_text("table.models")
                if width == 1920 and name in ("list", "case", "admin"):
                    shot = f"review-{name}.png"
                    page.screenshot(path=str(ARTIFACTS / shot), full_page=name != "admin")
                    _keep(shot)
        finally:
            page.close()


def test_a_large_group_folds_and_the_buttons_stay_in_view(site, browser):
    page = _login(browser, site["base"], 1024, 768)
    try:
        page.goto(f"{site['base']}/review/items/{site['items']['big']}")
        folded = page.locator("details.folded")
        assert folded.count() == 1 and "show all 25 contacts" in folded.inner_text()
        confirm = page.locator("#confirm-form button")
        box = confirm.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 768  # sticky at the bottom of the first screen
        # each identifier's pieces stay whole: the long mailbox wraps only after dots and @
        assert page.evaluate(MEASURE)["broken"] == []
        page.click("details.folded summary")
        assert page.locator("details.folded tbody tr").count() == 25 - page.locator("table.group").first.locator("tbody tr").count()
    finally:
        page.close()


def test_the_guard_item_says_what_held_it_with_its_numbers(site, browser):
    page = _login(browser, site["base"], 1024, 768)
    try:
        page.goto(f"{site['base']}/review/")
        row = page.locator("tr.case-row", has=page.locator(f"a[href*='/items/{site['items']['guard']}']"))
        assert "group size limit" in row.locator(".held-cell").inner_text()
        page.goto(f"{site['base']}/review/items/{site['items']['guard']}")
        why = page.inner_text("#explanation")
        assert "group-size" in why and "41 contacts (limit 40)" in why and "0.420" in why
    finally:
        page.close()


def test_a_three_group_case_is_decided_from_the_keyboard(site, browser):
    base, items, rec = site["base"], site["items"], site["rec"]
    a, b, c = site["groups"]
    page = _login(browser, base, 1024, 768)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(f"{base}/review/")
        row = page.locator(f"tr.case-row[data-case='{items['ab']}']")
        assert "3 pairs" in row.inner_text() and "3 groups" in row.inner_text()
        with page.expect_navigation():
            row.locator("a").first.click()
        assert page.locator(".case-group").count() == 3
        # a and b are one person (A), c another (B): three keys, then Enter
        for key in ("1", "1", "2"):
            page.keyboard.press(key)
        assert [page.locator(f".case-group[data-group='{g}'] input:checked").get_attribute("value") for g in (a, b, c)] == ["A", "A", "B"]
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "2 person(s); 1 pair(s) confirmed, 2 rejected" in page.inner_text(".flashes")
        assert f"/review/items/{items['big']}" in page.url  # on to the head of the queue
        page.goto(f"{base}/review/")
        assert page.locator(f"tr.case-row[data-case='{items['ab']}']").count() == 0
        # the decided item shows what the reviewer saw, and links to the group as it is now
        page.goto(f"{base}/review/items/{items['bc']}")
        assert "as the reviewer saw it" in page.inner_text("#seen-note")
        assert page.locator(".side").count() == 2 and page.locator(".side tbody tr").count() == 2
        assert problems == []
    finally:
        page.close()

    store = rec.store
    status = {r.id: r.status for r in rows(store, pending_merge)}
    assert (status[items["ab"]], status[items["bc"]], status[items["ac"]]) == ("confirmed", "rejected", "rejected")
    outcomes = {l.pendingMergeId: l.outcome for l in rows(store, label)}
    assert outcomes == {items["ab"]: "match", items["bc"]: "non-match", items["ac"]: "non-match"}
    groups = {r.id: r.linkedId or r.id for r in rows(store, contact)}
    assert groups[b] == groups[a] == a and groups[c] == c
    assert {l.pendingMergeId for l in rows(store, cannot_link)} == {items["bc"], items["ac"]}
    assert_sound(store)


def test_an_item_whose_groups_merge_elsewhere_leaves_the_queue(site, browser):
    base, items, rec = site["base"], site["items"], site["rec"]
    page = _login(browser, base, 1024, 768)
    try:
        page.goto(f"{base}/review/")
        before = int(page.inner_text(".count[data-status=pending]"))
        assert page.locator(f"tr.case-row[data-case='{items['stale']}']").count() == 1
        identify(rec, "doc.brown@hillvalley.edu", "+14155559002")  # joins both groups exactly
        page.reload()
        assert int(page.inner_text(".count[data-status=pending]")) == before - 1
        assert page.locator(f"tr.case-row[data-case='{items['stale']}']").count() == 0
        assert page.inner_text(".count[data-status=resolved]") == "1"
        page.goto(f"{base}/review/?status=resolved")
        assert "resolved elsewhere" in page.inner_text("table.queue")
    finally:
        page.close()
