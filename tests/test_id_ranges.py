"""No id or paging value reaches the database unless a row could have it: every route
in the URL map, with each of 0, -1, 2^31, 2^63, 10^30 and "abc" in each of its
variables, answers a 4xx (never a 5xx) on SQLite and PostgreSQL, logged in as an admin
so authentication does not hide what the route itself does; so do bulk bodies and
paging parameters."""
from __future__ import annotations

import re

import pytest
from review_seed import exact_only, near_miss, reviewer

from reconcile.web import create_app
from reconcile.web.ids import MAX_ID

BAD_IDS = ["0", "-1", str(2**31), str(2**63), str(10**30), "abc", "\u0663", "1e3", " 1"]
VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    app = create_app(exact_only(f"sqlite:///{tmp_path_factory.mktemp('routes') / 'routes.db'}"))
    app.extensions["reconcile"].store.dispose()
    return sorted(
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
        if "<" in rule.rule and rule.endpoint != "review_ui.static"
    )


@pytest.fixture
def app(db_url):
    app = create_app(exact_only(db_url))
    app.config.update(TESTING=True)
    yield app
    app.extensions["reconcile"].store.dispose()


def test_every_route_with_a_variable_is_covered(rules):
    """The routes this test walks; a new route with an id joins the walk by itself."""
    paths = {path for path, _ in rules}
    assert {"/reviews/<int:item_id>", "/review/items/<int:item_id>", "/admin/models/<version>/activate"} <= paths


def test_out_of_range_ids_in_any_route_are_refused_without_a_5xx(app, rules):
    """An ``<int:>`` variable that no row could hold is the 404 of an unknown URL; any
    other variable (a model version) is looked up and not found: never a 5xx."""
    from test_session_revocation import logged_in

    store = app.extensions["reconcile"].store
    token = reviewer(store, "root", admin=True)
    near_miss(app.extensions["reconcile"], 1)
    api = app.test_client()
    ui, csrf = logged_in(app, "root")
    seen = 0
    for path, method in rules:
        for bad in BAD_IDS:
            url = VARIABLE.sub(lambda m: bad if m.group(1) != "decision" else "confirm", path)
            if path.startswith("/review/"):
                response = ui.open(url, method=method, data={"csrf_token": csrf})
            else:
                response = api.open(url, method=method, json={}, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code < 500, (method, url, response.status_code, response.data[:200])
            if "<int:" in path:
                assert response.status_code == 404, (method, url, response.status_code)
            if response.status_code >= 400 and response.is_json:
                assert set(response.get_json()["error"]) >= {"code", "message"}
            seen += 1
    assert seen >= len(BAD_IDS) * 8


def test_bulk_ids_out_of_range_are_a_400(app):
    token = reviewer(app.extensions["reconcile"].store, "alice")
    client = app.test_client()
    for ids in ([0], [-1], [2**31], [2**63], [10**30], [1e300], ["1"], [True], [1.5], [None], [[1]], [1, 2**31]):
        response = client.post(
            "/reviews/bulk", json={"ids": ids, "decision": "reject"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 400, ids
        assert response.get_json()["error"]["field"] == "ids"


def test_the_largest_id_is_a_plain_not_found(app):
    token = reviewer(app.extensions["reconcile"].store, "alice")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/reviews/{MAX_ID}", headers=headers).status_code == 404
    bulk = client.post("/reviews/bulk", json={"ids": [MAX_ID, 7.0], "decision": "confirm"}, headers=headers)
    assert bulk.status_code == 200  # 7.0 is the integer 7 in JSON, as the document says
    assert [(r["id"], r["error"]["code"]) for r in bulk.get_json()["results"]] == [(MAX_ID, "not_found"), (7, "not_found")]


def test_paging_out_of_range_is_a_400(app):
    token = reviewer(app.extensions["reconcile"].store, "alice")
    client = app.test_client()
    for query in ("page=0", "page=-1", f"page={2**31}", f"page={10**30}", "per_page=abc", "per_page=201", "per_page="):
        response = client.get(f"/reviews?{query}", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 400, query
        assert response.get_json()["error"]["code"] == "invalid_parameter"


def test_the_ui_bulk_form_skips_ids_no_row_can_have(app):
    from test_session_revocation import logged_in

    store = app.extensions["reconcile"].store
    reviewer(store, "alice")
    client, csrf = logged_in(app)
    response = client.post(
        "/review/bulk",
        data={"decision": "reject", "ids": ["\u00b2", str(2**63), "0"], "csrf_token": csrf, "back": "/review/"},
    )
    assert response.status_code == 302  # "select at least one item", not a 500
