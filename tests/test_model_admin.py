"""The /admin/models API and the review UI's model page: who may look, who may change,
CSRF, refusals, charts served only as files of registered versions."""
from __future__ import annotations

import pytest
from model_versions import SVG, make_version, scores
from review_seed import PASSWORD, bearer, reviewer

from reconcile.config import Settings
from reconcile.review.queue import add_reviewer
from reconcile.store import models as registry
from reconcile.training.registry import register_path


@pytest.fixture
def settings(sqlite_db):
    return Settings(database_url=sqlite_db, model_poll_seconds=3600)  # the model on; no polling in between


@pytest.fixture
def versions(tmp_path, store):
    root = tmp_path / "models"
    register_path(store, make_version(root, "v2", candidate=scores(0.97, 0.85), active=scores(0.96, 0.80, "default")))
    register_path(store, make_version(root, "v3", candidate=scores(0.95, 0.70), active=scores(0.96, 0.80, "default")))
    return root


@pytest.fixture
def tokens(store) -> dict[str, str]:
    return {"alice": reviewer(store, "alice"), "root": add_reviewer(store, "root", PASSWORD, admin=True)}


def login(client, username: str):
    client.get("/review/login")
    with client.session_transaction("/review/") as sess:
        csrf = sess["csrf"]
    response = client.post("/review/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf})
    assert response.status_code == 302
    with client.session_transaction("/review/") as sess:
        return sess["csrf"]


def test_admin_api_needs_a_reviewer_and_changes_need_an_admin(client, versions, tokens):
    assert client.get("/admin/models").status_code == 401
    assert client.post("/admin/models/v2/activate", json={}).status_code == 401
    assert client.post("/admin/models/rollback").status_code == 401
    assert client.get("/admin/models/v2/charts/pr_curve.svg").status_code == 401
    listed = client.get("/admin/models", headers=bearer(tokens["alice"]))
    assert listed.status_code == 200
    body = listed.get_json()
    assert body["active"] == "default" and [m["version"] for m in body["models"]] == ["default", "v2", "v3"]
    assert body["serving"]["version"] == "default"
    v2 = body["models"][1]
    assert v2["heldout"] == {"precision": 0.97, "recall": 0.765, "f1": 0.85, "basis": "held-out labels"}
    assert v2["comparedWith"]["version"] == "default" and v2["charts"] == ["pr_curve.svg", "match_weights.svg"]
    for path in ("/admin/models/v2/activate", "/admin/models/rollback"):
        refused = client.post(path, json={}, headers=bearer(tokens["alice"]))
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"


def test_admin_activates_is_refused_a_worse_model_forces_and_rolls_back(client, app, versions, tokens, store):
    admin = bearer(tokens["root"])
    done = client.post("/admin/models/v2/activate", json={}, headers=admin)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["model"]["activatedBy"] == "root" and done.get_json()["forced"] is False
    # this worker switches at once (the others within the poll interval)
    assert app.extensions["reconcile"].models.current().version == "v2"
    assert client.post("/identify", json={"email": "new@x.org"}).get_json()["match"]["modelVersion"] == "v2"

    refused = client.post("/admin/models/v3/activate", json={"force": False}, headers=admin)
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "activation_refused" and "worse" in error["message"]
    assert error["decision"]["candidate"]["f1"] == 0.70 and error["decision"]["active"]["f1"] == 0.85
    assert registry.active_model(store).version == "v2"
    bad = client.post("/admin/models/v3/activate", json={"force": "yes"}, headers=admin)
    assert bad.status_code == 400
    forced = client.post("/admin/models/v3/activate", json={"force": True}, headers=admin)
    assert forced.status_code == 200 and forced.get_json()["forced"] is True

    back = client.post("/admin/models/rollback", headers=admin)
    assert back.status_code == 200 and back.get_json()["model"]["version"] == "v2"
    assert app.extensions["reconcile"].models.current().version == "v2"
    unknown = client.post("/admin/models/nope/activate", json={}, headers=admin)
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "unknown_model"


def test_rollback_with_nothing_before_is_a_409(client, tokens):
    response = client.post("/admin/models/rollback", headers=bearer(tokens["root"]))
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "nothing_to_roll_back"


def test_session_calls_to_the_admin_api_need_the_csrf_token(client, versions, tokens, store):
    csrf = login(client, "root")
    assert client.post("/admin/models/v2/activate", json={}).status_code == 403
    assert registry.active_model(store).version == "default"
    ok = client.post("/admin/models/v2/activate", json={}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200


def test_charts_are_served_only_for_registered_versions(client, versions, tokens, tmp_path):
    auth = bearer(tokens["alice"])
    chart = client.get("/admin/models/v2/charts/pr_curve.svg", headers=auth)
    assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
    assert chart.get_data(as_text=True) == SVG
    assert "default-src 'none'" in chart.headers["Content-Security-Policy"]
    (versions / "v2" / "secret.txt").write_text("no")
    for path in (
        "/admin/models/v2/charts/secret.txt",
        "/admin/models/v2/charts/model.json",
        "/admin/models/v2/charts/..%2Fv3%2Fpr_curve.svg",
        "/admin/models/v2/charts/%2E%2E%2F%2E%2E%2Fsecret.txt",
        "/admin/models/nope/charts/pr_curve.svg",
        "/admin/models/default/charts/secret.txt",
        "/admin/models/..%2F..%2Fetc/charts/pr_curve.svg",
    ):
        assert client.get(path, headers=auth).status_code == 404, path


def test_a_chart_of_a_version_whose_model_file_went_away_is_a_404(client, versions, tokens):
    auth = bearer(tokens["alice"])
    for chart in (versions / "v2").glob("*.svg"):  # no file to serve: it would be drawn from the model
        chart.unlink()
    (versions / "v2" / "model.json").unlink()
    missing = client.get("/admin/models/v2/charts/match_weights.svg", headers=auth)
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "not_found")


def test_the_shipped_model_gets_its_metrics_and_charts_drawn_from_its_files(client, versions, tokens):
    """The shipped default has no directory of chart files, but its metrics file lists
    precision and recall at a few thresholds and its model holds the weights: the API
    shows the scores at its upper threshold, the charts are drawn (few cuts: as points)."""
    auth = bearer(tokens["alice"])
    listed = {m["version"]: m for m in client.get("/admin/models", headers=auth).get_json()["models"]}
    default = listed["default"]
    assert default["heldout"]["precision"] > 0.9 and "shipped metrics" in default["heldout"]["basis"]
    assert default["charts"] == ["pr_curve.svg", "match_weights.svg"]
    pr = client.get("/admin/models/default/charts/pr_curve.svg", headers=auth)
    assert pr.status_code == 200 and pr.mimetype == "image/svg+xml"
    svg = pr.get_data(as_text=True)
    assert svg.count("<circle") >= 3 and "<polyline" not in svg and "<script" not in svg
    assert "default-src 'none'" in pr.headers["Content-Security-Policy"]
    weights = client.get("/admin/models/default/charts/match_weights.svg", headers=auth)
    assert weights.status_code == 200 and "prior" in weights.get_data(as_text=True)


def test_the_model_page_is_for_admins_only(client, versions, tokens):
    assert client.get("/review/admin/models").status_code == 302  # to the login page
    login(client, "alice")
    page = client.get("/review/admin/models")
    assert page.status_code == 403
    assert "/review/admin/models" not in client.get("/review/").get_data(as_text=True)  # no header link


def test_the_model_page_shows_versions_side_by_side_and_acts(client, versions, tokens, store):
    csrf = login(client, "root")
    queue = client.get("/review/").get_data(as_text=True)
    assert 'href="/review/admin/models"' in queue  # the header links to it for admins
    page = client.get("/review/admin/models")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'class="active-model" data-version="default"' in html
    assert "0.8500" in html and "0.7000" in html  # both versions' held-out F1
    assert "v3 is worse than the active default" in html
    assert 'src="/admin/models/v2/charts/pr_curve.svg"' in html and 'src="/admin/models/v3/charts/match_weights.svg"' in html

    # forms need the CSRF token
    assert client.post("/review/admin/models/v2/activate", data={}).status_code == 403
    assert registry.active_model(store).version == "default"
    refused = client.post("/review/admin/models/v3/activate", data={"csrf_token": csrf}, follow_redirects=True)
    assert "v3 is worse than the active default" in refused.get_data(as_text=True)
    assert registry.active_model(store).version == "default"
    done = client.post("/review/admin/models/v2/activate", data={"csrf_token": csrf}, follow_redirects=True)
    html = done.get_data(as_text=True)
    assert "v2 is now active" in html and 'class="active-model" data-version="v2"' in html
    assert "Roll back to default" in html
    client.post("/review/admin/models/rollback", data={"csrf_token": csrf, "force": "1"}, follow_redirects=True)
    assert registry.active_model(store).version == "default"


def test_non_admin_ui_posts_are_refused(client, versions, tokens, store):
    csrf = login(client, "alice")
    response = client.post("/review/admin/models/v2/activate", data={"csrf_token": csrf})
    assert response.status_code == 403 and registry.active_model(store).version == "default"
    assert client.post("/review/admin/models/rollback", data={"csrf_token": csrf}).status_code == 403


def test_every_documented_admin_response_is_a_real_one(client, versions, tokens):
    from jsonschema import Draft202012Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    from reconcile.web.health import openapi_document

    doc = openapi_document()
    registry_ = Registry().with_resource("urn:openapi", DRAFT202012.create_resource(doc))

    def rebase(schema):
        if isinstance(schema, dict):
            return {k: ("urn:openapi" + v if k == "$ref" and v.startswith("#") else rebase(v)) for k, v in schema.items()}
        if isinstance(schema, list):
            return [rebase(v) for v in schema]
        return schema

    covered = set()

    def check(response, path: str, method: str) -> None:
        status = str(response.status_code)
        if status not in doc["paths"][path][method]["responses"]:
            status = "default"
        spec = doc["paths"][path][method]["responses"][status]
        while "$ref" in spec:
            node = doc
            for part in spec["$ref"].lstrip("#/").split("/"):
                node = node[part]
            spec = node
        validator = Draft202012Validator(rebase(spec["content"]["application/json"]["schema"]), registry=registry_)
        errors = [e.message for e in validator.iter_errors(response.get_json())]
        assert not errors, f"{method} {path} {status}: {errors}"
        covered.add((path, method, status))

    admin, alice = bearer(tokens["root"]), bearer(tokens["alice"])
    activate = "/admin/models/{version}/activate"
    check(client.get("/admin/models", headers=alice), "/admin/models", "get")
    check(client.get("/admin/models"), "/admin/models", "get")
    check(client.post("/admin/models/v2/activate", json={}, headers=alice), activate, "post")
    check(client.post("/admin/models/v2/activate", json={"force": 1}, headers=admin), activate, "post")
    check(client.post("/admin/models/v2/activate"), activate, "post")
    check(client.post("/admin/models/nope/activate", json={}, headers=admin), activate, "post")
    check(client.post("/admin/models/rollback", headers=admin), "/admin/models/rollback", "post")
    check(client.post("/admin/models/v2/activate", json={}, headers=admin), activate, "post")
    check(client.post("/admin/models/v3/activate", json={}, headers=admin), activate, "post")
    check(client.post("/admin/models/rollback", json={"force": True}, headers=admin), "/admin/models/rollback", "post")
    check(client.get("/admin/models", headers=admin), "/admin/models", "get")
    (versions / "v3" / "model.json").unlink()
    check(client.post("/admin/models/v3/activate", json={"force": True}, headers=admin), activate, "post")
    rollback = "/admin/models/rollback"
    check(client.post(rollback), rollback, "post")
    check(client.post(rollback, headers=alice), rollback, "post")
    check(client.post(rollback, json={"force": "x"}, headers=admin), rollback, "post")
    (versions / "v2" / "model.json").unlink()  # default is active; rollback goes to v2
    check(client.post(rollback, json={"force": True}, headers=admin), rollback, "post")
    for path, method in (("/admin/models", "get"), (activate, "post"), (rollback, "post")):
        check(client.put("/admin/models", headers=admin), path, method)  # 405: the default shape
    chart = "/admin/models/{version}/charts/{name}"
    svg = client.get("/admin/models/v2/charts/pr_curve.svg", headers=alice)
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    covered.add((chart, "get", "200"))
    check(client.get("/admin/models/v2/charts/pr_curve.svg"), chart, "get")
    check(client.get("/admin/models/v2/charts/x.svg", headers=alice), chart, "get")
    documented = {
        (path, method, status)
        for path, item in doc["paths"].items()
        if path.startswith("/admin")
        for method, operation in item.items()
        for status in operation["responses"]
    }
    assert documented - covered == set()
