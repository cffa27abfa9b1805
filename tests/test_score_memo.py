"""Scoring before the write lock (reconcile.engine.score_memo) saves work and never
decides anything: a request scores the candidates a snapshot shows before it queues for
the lock, and under the lock the probabilistic stage reads its candidates again and acts
on those alone. A writer that changes the candidates in between changes the answer
exactly as it would have without the pre-pass."""
import pytest
from conftest import assert_sound, rows
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from reconcile.config import Settings
from reconcile.engine import reconciler as reconciler_module
from reconcile.engine.erasure import ErasureKey, erase
from reconcile.engine.reconciler import Reconciler
from reconcile.engine.score_memo import ScoreMemo
from reconcile.normalize import parse_identity
from reconcile.store import Store
from reconcile.store.migrate import upgrade
from reconcile.store.schema import contact
from reconcile.web import create_app

JONATHAN = {"email": "jonathan.smith@gmail.com", "phoneNumber": "+14155552671", "name": "Jonathan Smith"}
ALIAS = {"email": "Jonathan.Smith+shop@gmail.com", "name": "Smith Jonathan"}  # links by the model alone


@pytest.fixture
def app(sqlite_db):
    app = create_app(Settings(database_url=sqlite_db))
    yield app
    app.extensions["reconcile"].store.dispose()


@pytest.fixture
def other_writer(reconciler):
    """Another process's writer: its own store (own connections, own writer turn) on the
    same database, so it can write while the request under test has not taken the lock."""
    store = Store(reconciler.store.url)
    yield Reconciler(store, reconciler.settings)
    store.dispose()


def between_prepass_and_lock(monkeypatch, write) -> list[int]:
    """Run ``write()`` right after the next pre-pass (once: ``write`` may itself identify);
    return how many pairs that pre-pass scored."""
    scored: list[int] = []
    prescore = reconciler_module.prescore

    def prescore_then_write(tx, **kwargs):
        prescore(tx, **kwargs)
        if not scored:
            scored.append(len(kwargs["memo"]))
            write()

    monkeypatch.setattr(reconciler_module, "prescore", prescore_then_write)
    return scored


def test_a_candidate_erased_after_the_prepass_is_not_linked(client, reconciler, other_writer, monkeypatch, store):
    jonathan = reconciler.identify(parse_identity(JONATHAN)).contact["primaryContactId"]
    key = ErasureKey.parse(contact_id=jonathan)
    scored = between_prepass_and_lock(monkeypatch, lambda: erase(other_writer.store, key, by="test"))

    alias = reconciler.identify(parse_identity(ALIAS))

    assert scored == [1]  # the pre-pass saw Jonathan and scored him
    assert alias.match["method"] == "new"  # the locked read no longer has him
    assert alias.match["score"] is None and alias.match["candidateId"] is None
    assert alias.contact["secondaryContactIds"] == []
    assert_sound(store)


def test_a_candidate_created_after_the_prepass_is_scored_under_the_lock(
    client, reconciler, other_writer, monkeypatch, store
):
    created: list[int] = []
    scored = between_prepass_and_lock(
        monkeypatch,
        lambda: created.append(other_writer.identify(parse_identity(JONATHAN)).contact["primaryContactId"]),
    )

    alias = reconciler.identify(parse_identity(ALIAS))

    assert scored == [0]  # nothing to score before the lock
    assert alias.match["method"] == "probabilistic"
    assert alias.contact["primaryContactId"] == created[0]
    assert alias.match["score"] >= reconciler.settings.upper_threshold
    assert_sound(store)


def test_the_prepass_changes_no_answer(client, reconciler, monkeypatch, store, tmp_path):
    """The same requests, with and without the pre-pass, on two databases: the same answers."""
    requests = [
        JONATHAN, ALIAS,
        {"email": "jonathan.s@gmail.com", "name": "Jonathan Smith"},  # uncertain: a review
        {"email": "maria.garcia@yahoo.com", "phoneNumber": "+442079460958", "name": "Maria Garcia"},
        {"email": "m.garcia@yahoo.com", "phoneNumber": "+442079460958", "name": "Maria Garcia"},
        {"email": "mgarcia@yahoo.com", "name": "Maria Garcia"},
    ]
    with_prepass = [reconciler.identify(parse_identity(r), request_id=str(i)).as_json() for i, r in enumerate(requests)]
    with_prepass_rows = linking(rows(store, contact))

    other_url = f"sqlite:///{tmp_path / 'without.db'}"
    upgrade(other_url)
    other = create_app(Settings(database_url=other_url)).extensions["reconcile"]
    monkeypatch.setattr(reconciler_module, "prescore", lambda tx, **kwargs: None)
    try:
        without = [other.identify(parse_identity(r), request_id=str(i)).as_json() for i, r in enumerate(requests)]
        without_rows = linking(rows(other.store, contact))
    finally:
        other.store.dispose()

    assert without == with_prepass
    assert without_rows == with_prepass_rows


def linking(contacts) -> list[tuple]:
    """What the engine decided for each contact (no timestamps)."""
    return [(c.id, c.email, c.phoneNumber, c.linkedId, c.linkPrecedence, c.linkMethod, c.linkScore) for c in contacts]


class CountingScorer:
    """A stand-in model: the score is a function of the two records; counts what it scores."""

    version = "counting"

    def __init__(self) -> None:
        self.pairs = 0

    def score_many(self, record, candidates):
        self.pairs += len(candidates)
        return [(tuple(record.items()), tuple(c.items())) for c in candidates]


records = st.dictionaries(st.sampled_from(["email", "phone", "name_key"]), st.sampled_from(["a", "b", None]), min_size=1)


@given(record=records, before=st.lists(records, max_size=6), after=st.lists(records, max_size=6))
@hsettings(max_examples=200, deadline=None)
def test_remembered_scores_are_the_models_and_each_pair_is_scored_once(record, before, after):
    scorer = CountingScorer()
    memo = ScoreMemo(scorer)
    memo.score_many(record, before)
    assert memo.score_many(record, after) == CountingScorer().score_many(record, after)
    distinct = {tuple(c.items()) for c in before + after}
    assert scorer.pairs == len(distinct) == len(memo)
