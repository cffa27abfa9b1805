"""The probabilistic stage with the shipped model: near misses link, uncertain ones
wait for review with their evidence, strangers stay apart, guards still hold."""
import pytest
from conftest import assert_sound, identify, rows
from sqlalchemy import insert

from reconcile.config import Settings
from reconcile.store.contacts import utcnow
from reconcile.store.schema import cannot_link, contact, pending_merge
from reconcile.web import create_app

JONATHAN = {"email": "jonathan.smith@gmail.com", "phoneNumber": "+14155552671", "name": "Jonathan Smith"}


@pytest.fixture
def app(sqlite_db):
    app = create_app(Settings(database_url=sqlite_db))
    yield app
    app.extensions["reconcile"].store.dispose()


def test_the_seed_examples_are_unchanged_with_the_model_on(client, store):
    identify(client, email="lorraine@hillvalley.edu", phoneNumber="123456")
    assert identify(client, email="mcfly@hillvalley.edu", phoneNumber="123456")["contact"] == {
        "primaryContactId": 1,
        "emails": ["lorraine@hillvalley.edu", "mcfly@hillvalley.edu"],
        "phoneNumbers": ["123456"],
        "secondaryContactIds": [2],
    }
    identify(client, email="george@hillvalley.edu", phoneNumber="919191")
    identify(client, email="biffsucks@hillvalley.edu", phoneNumber="717171")
    assert identify(client, email="george@hillvalley.edu", phoneNumber="717171")["contact"] == {
        "primaryContactId": 3,
        "emails": ["george@hillvalley.edu", "biffsucks@hillvalley.edu"],
        "phoneNumbers": ["919191", "717171"],
        "secondaryContactIds": [4],
    }
    assert rows(store, pending_merge) == []
    assert_sound(store)


def test_a_plus_alias_with_the_same_name_links_automatically_with_its_score(client, store, reconciler):
    first = identify(client, **JONATHAN)
    alias = identify(client, email="Jonathan.Smith+shop@gmail.com", name="Smith Jonathan")
    assert alias["match"]["method"] == "probabilistic"
    assert alias["match"]["score"] >= reconciler.settings.upper_threshold
    assert alias["match"]["modelVersion"] == reconciler.scorer.version
    assert alias["contact"]["primaryContactId"] == first["contact"]["primaryContactId"]
    assert alias["contact"]["emails"] == ["jonathan.smith@gmail.com", "jonathan.smith+shop@gmail.com"]
    created = rows(store, contact)[-1]
    assert (created.linkMethod, created.linkModel) == ("probabilistic", reconciler.scorer.version)
    assert created.linkScore == pytest.approx(alias["match"]["score"])
    assert_sound(store)


def test_an_uncertain_near_miss_opens_one_pending_merge_with_the_evidence(client, store, reconciler):
    first = identify(client, **JONATHAN)
    # a typo at the same provider is confident enough to link (test above); a shortened
    # local part there, with the same name, could be a namesake's: a reviewer decides
    typo = identify(client, email="jonathan.s@gmail.com", name="Jonathan Smith")
    score = typo["match"]["score"]
    assert reconciler.settings.lower_threshold <= score < reconciler.settings.upper_threshold
    assert typo["contact"]["primaryContactId"] != first["contact"]["primaryContactId"]
    (pending,) = rows(store, pending_merge)
    assert typo["match"]["pendingMergeIds"] == [pending.id]
    assert (pending.reason, pending.status, pending.modelVersion) == ("score", "pending", reconciler.scorer.version)
    assert pending.score == pytest.approx(score)
    comparisons = {c["comparison"]: c for c in pending.evidence["comparisons"]}
    assert set(comparisons) == {"email", "phone", "name"}
    assert comparisons["name"]["weight"] > 0 and comparisons["phone"]["weight"] == 0  # phone missing: no evidence
    # the same pair of groups is never proposed twice
    again = identify(client, email="jonathan.s@gmail.com", phoneNumber="2025550143", name="Jonathan Smith")
    assert again["match"]["pendingMergeIds"] == []
    assert len(rows(store, pending_merge)) == 1
    assert_sound(store)


def test_strangers_stay_apart(client, store):
    identify(client, **JONATHAN)
    other = identify(client, email="maria.garcia@yahoo.com", phoneNumber="+442079460958", name="Maria Garcia")
    assert other["match"]["method"] == "new"
    assert other["match"]["pendingMergeIds"] == []
    assert_sound(store)


def test_a_rejected_pair_is_not_linked_by_the_model_either(client, store):
    first = identify(client, **JONATHAN)["contact"]["primaryContactId"]
    second = identify(client, email="smith.jonathan@yahoo.com", phoneNumber="+12025550143")
    second_id = second["contact"]["primaryContactId"]
    with store.engine.begin() as conn:
        conn.execute(insert(cannot_link).values(leftContactId=first, rightContactId=second_id, createdAt=utcnow()))
    # now a record that the model would tie to the first group, arriving in the second
    bridge = identify(client, email="jonathan.smith+x@gmail.com", phoneNumber="+12025550143", name="Jonathan Smith")
    assert bridge["contact"]["primaryContactId"] == second_id
    assert first not in bridge["contact"]["secondaryContactIds"]
    (pending,) = [p for p in rows(store, pending_merge) if {p.leftPrimaryId, p.rightPrimaryId} == {first, second_id}]
    assert (pending.reason, pending.guard) == ("conflict", "cannot-link")
    assert_sound(store)


def test_exact_only_mode_never_scores(sqlite_db):
    app = create_app(Settings(database_url=sqlite_db, probabilistic=False))
    client = app.test_client()
    identify(client, **JONATHAN)
    alias = identify(client, email="jonathan.smith+shop@gmail.com", name="Jonathan Smith")
    assert alias["match"]["method"] == "new"
    assert (alias["match"]["score"], alias["match"]["candidateId"], alias["match"]["modelVersion"]) == (None, None, None)


def test_a_missing_model_file_is_a_clear_startup_error(sqlite_db, tmp_path):
    from reconcile.scoring.documents import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="RECONCILE_MODEL"):
        create_app(Settings(database_url=sqlite_db, model_path=str(tmp_path / "nope.json")))
