"""Building review queues for the review tests: real contacts through the identify
pipeline (exact stage only, so no scorer opens items behind the test's back), then
pending merges opened with the same store call the pipeline uses."""
from __future__ import annotations

from sqlalchemy import select

from reconcile.config import Settings
from reconcile.engine.reconciler import Reconciler
from reconcile.normalize import parse_identity
from reconcile.review.queue import add_reviewer
from reconcile.store import ContactTx, Store
from reconcile.store.pending import open_pending_merge
from reconcile.store.schema import pending_merge

EVIDENCE = [
    {"comparison": "prior", "weight": -9.5},
    {"comparison": "email", "level": "jw>=0.88", "gamma": 2, "weight": 3.1},
    {"comparison": "phone", "level": "last 7 digits", "gamma": 1, "weight": 5.4},
    {"comparison": "name", "level": "exact", "gamma": 3, "weight": 4.2},
    {"comparison": "dob", "level": "else", "gamma": 0, "weight": -1.3},
]
MATCH_WEIGHT = sum(e["weight"] for e in EVIDENCE)
PASSWORD = "correct horse battery"


def exact_only(url: str, **extra) -> Settings:
    return Settings(database_url=url, probabilistic=False, **extra)


def identify(reconciler: Reconciler, email: str | None = None, phone: str | None = None, name: str | None = None) -> dict:
    body = {"email": email, "phoneNumber": phone}
    if name is not None:
        body["name"] = name
    return reconciler.identify(parse_identity(body, reconciler.settings.default_region)).contact


def near_miss(reconciler: Reconciler, i: int, score: float = 0.9, name: str = "Ann Lee") -> int:
    """Two single-contact groups that look alike (older one first) and a pending merge of them."""
    older = identify(reconciler, f"ann.lee{i}@hillvalley.edu", f"+4420794600{i % 100:02d}", name)
    newer = identify(reconciler, f"annlee{i}@twinpines.org", f"+4420794611{i % 100:02d}", name)
    return open_item(reconciler.store, older["primaryContactId"], newer["primaryContactId"], score=score)


def open_item(store: Store, older: int, newer: int, score: float | None = 0.9, reason: str = "score", **extra) -> int:
    def work(tx: ContactTx) -> int | None:
        return open_pending_merge(
            tx,
            older,
            newer,
            reason=reason,
            contact_id=newer,
            candidate_id=older,
            score=score,
            match_weight=MATCH_WEIGHT if score is not None else None,
            model_version="test-1",
            **{"evidence": EVIDENCE if score is not None else None, **extra},
        )

    item_id = store.write(work)
    assert item_id is not None
    return item_id


def bulk_queue(store: Store, n: int) -> list[int]:
    """``n`` pending merges between fresh pairs, in one transaction (fast for big queues)."""
    from reconcile.normalize import Identity

    def work(tx: ContactTx) -> list[int]:
        ids = []
        for i in range(n):
            a = tx.insert_contact(Identity(f"bulk{i}@hillvalley.edu", f"+1202555{i:04d}", "Bo Bulk"), linked_id=None, method="new", cause="seed")
            b = tx.insert_contact(Identity(f"bulk.{i}@hillvalley.edu", f"+1202556{i:04d}", "Bo Bulk"), linked_id=None, method="new", cause="seed")
            ids.append(
                open_pending_merge(
                    tx, a.id, b.id, reason="score", contact_id=b.id, candidate_id=a.id,
                    score=0.8 + (i % 97) / 500, match_weight=2.0, model_version="test-1", evidence=EVIDENCE,
                )
            )
        return ids

    return store.write(work)


def status_of(store: Store, item_id: int) -> str:
    with store.read() as tx:
        return tx.conn.execute(select(pending_merge.c.status).where(pending_merge.c.id == item_id)).scalar_one()


def reviewer(store: Store, name: str = "alice", admin: bool = False) -> str:
    return add_reviewer(store, name, PASSWORD, admin=admin)


def bearer(token: str) -> dict:
    """The header an API client sends with a reviewer's token."""
    return {"Authorization": f"Bearer {token}"}


def session_login(client, username: str) -> str:
    """Log ``username`` in through the review UI's form (password :data:`PASSWORD`); the
    session's CSRF token, which session-authenticated API calls send as ``X-CSRF-Token``."""
    client.get("/review/login")
    with client.session_transaction("/review/") as sess:
        csrf = sess["csrf"]
    response = client.post("/review/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf})
    assert response.status_code == 302, response.get_data(as_text=True)
    with client.session_transaction("/review/") as sess:
        return sess["csrf"]
