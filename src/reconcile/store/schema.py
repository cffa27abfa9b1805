"""Table definitions: the seed's ``Contact`` columns under their exact names, plus the
engine's keys, and the append-only audit log. Alembic migrations create these tables;
the store layer issues every statement against them."""
from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    text,
)

metadata = MetaData()

LIVE = text('"deletedAt" IS NULL')

contact = Table(
    "Contact",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phoneNumber", String(64)),
    Column("email", String(320)),
    Column("linkedId", Integer, ForeignKey("Contact.id")),
    Column("linkPrecedence", String(9), nullable=False),
    Column("createdAt", DateTime(timezone=True), nullable=False),
    Column("updatedAt", DateTime(timezone=True), nullable=False),
    Column("deletedAt", DateTime(timezone=True)),
    Column("name", String(200)),
    # blocking keys for the probabilistic stage (see reconcile.normalize)
    Column("emailMailbox", String(320)),
    Column("emailLocal", String(320)),
    Column("phoneNational", String(32)),
    Column("phoneTail", String(16)),
    Column("nameKey", String(200)),
    # how this row came to be in its group
    Column("linkMethod", String(16), nullable=False),
    Column("linkScore", Float),
    Column("linkModel", String(64)),
    CheckConstraint("\"linkPrecedence\" IN ('primary', 'secondary')", name="ck_contact_precedence"),
    CheckConstraint(
        "(\"linkPrecedence\" = 'primary' AND \"linkedId\" IS NULL)"
        " OR (\"linkPrecedence\" = 'secondary' AND \"linkedId\" IS NOT NULL)",
        name="ck_contact_link_shape",
    ),
    sqlite_autoincrement=True,
)

Index("ix_contact_email", contact.c.email)
Index("ix_contact_phone", contact.c.phoneNumber)
Index("ix_contact_linked", contact.c.linkedId)
Index("ix_contact_mailbox", contact.c.emailMailbox)
Index("ix_contact_local", contact.c.emailLocal)
Index("ix_contact_phone_national", contact.c.phoneNational)
Index("ix_contact_phone_tail", contact.c.phoneTail)
Index("ix_contact_name_key", contact.c.nameKey)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("contactId", Integer, ForeignKey("Contact.id"), nullable=False),
    Column("action", String(32), nullable=False),
    Column("oldLinkedId", Integer),
    Column("newLinkedId", Integer),
    Column("oldPrecedence", String(9)),
    Column("newPrecedence", String(9)),
    Column("cause", String(128), nullable=False),
    Column("detail", JSON),
    sqlite_autoincrement=True,
)

Index("ix_audit_contact", audit_log.c.contactId)
Index("ix_audit_cause", audit_log.c.cause)

__all__ = ["metadata", "contact", "audit_log", "LIVE"]
