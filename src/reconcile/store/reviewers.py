"""Reviewer accounts: who may decide the review queue. Passwords and API tokens arrive
here already hashed (see :mod:`reconcile.review.queue`); the store never sees either."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update

from . import Store
from .contacts import ContactTx, utcnow
from .schema import reviewer


def create_reviewer(store: Store, username: str, *, password_hash: str, token_hash: str, admin: bool) -> bool:
    """Add an account; ``False`` (and nothing written) when the username is taken."""

    def work(tx: ContactTx) -> bool:
        if tx.conn.execute(select(reviewer.c.id).where(reviewer.c.username == username)).first():
            return False
        tx.conn.execute(
            insert(reviewer).values(
                username=username,
                passwordHash=password_hash,
                apiTokenHash=token_hash,
                isAdmin=admin,
                createdAt=utcnow(),
            )
        )
        return True

    return store.write(work, lock_keys=[f"reviewer:{username}"])


def set_token_hash(store: Store, username: str, token_hash: str) -> bool:
    """Replace an account's API token hash; ``False`` when there is no such account."""

    def work(tx: ContactTx) -> int:
        return tx.conn.execute(
            update(reviewer).where(reviewer.c.username == username).values(apiTokenHash=token_hash)
        ).rowcount

    return store.write(work, lock_keys=[f"reviewer:{username}"]) == 1


def set_password_hash(store: Store, username: str, password_hash: str) -> bool:
    """Replace an account's password hash and end its sessions; ``False`` when there is no such account."""
    return _update_named(store, username, passwordHash=password_hash, sessionGeneration=reviewer.c.sessionGeneration + 1)


def set_disabled(store: Store, username: str, disabled: bool) -> bool:
    """Disable an account (ending its sessions) or enable it again; ``False`` when there
    is no such account. Enabling revives no session: the generation moved on at disabling."""
    if disabled:
        # an account disabled already keeps its first disabledAt
        return _update_named(
            store,
            username,
            disabledAt=func.coalesce(reviewer.c.disabledAt, utcnow()),
            sessionGeneration=reviewer.c.sessionGeneration + 1,
        )
    return _update_named(store, username, disabledAt=None)


def end_sessions(store: Store, username: str) -> bool:
    """Void every session of an account (logout ends them all, copies of the cookie too)."""
    return _update_named(store, username, sessionGeneration=reviewer.c.sessionGeneration + 1)


def _update_named(store: Store, username: str, **values: Any) -> bool:
    def work(tx: ContactTx) -> int:
        return tx.conn.execute(update(reviewer).where(reviewer.c.username == username).values(**values)).rowcount

    return store.write(work, lock_keys=[f"reviewer:{username}"]) == 1


def all_reviewers(store: Store) -> list[Any]:
    """Every account row, disabled ones too, by username."""
    with store.read() as tx:
        return tx.conn.execute(select(reviewer).order_by(reviewer.c.username)).all()


def reviewer_named(store: Store, username: str) -> Any | None:
    """The account row with this username, disabled or not."""
    with store.read() as tx:
        return tx.conn.execute(select(reviewer).where(reviewer.c.username == username)).first()


def active_reviewer_named(store: Store, username: str) -> Any | None:
    """The account row with this username, unless it is disabled."""
    with store.read() as tx:
        return tx.conn.execute(
            select(reviewer).where(reviewer.c.username == username, reviewer.c.disabledAt.is_(None))
        ).first()


def active_reviewer_with_token(store: Store, token_hash: str) -> Any | None:
    """The account row holding this API token hash, unless it is disabled."""
    with store.read() as tx:
        return tx.conn.execute(
            select(reviewer).where(reviewer.c.apiTokenHash == token_hash, reviewer.c.disabledAt.is_(None))
        ).first()


__all__ = [
    "create_reviewer",
    "set_token_hash",
    "set_password_hash",
    "set_disabled",
    "end_sessions",
    "all_reviewers",
    "reviewer_named",
    "active_reviewer_named",
    "active_reviewer_with_token",
]
