"""Table definitions: the seed's ``Contact`` columns under their exact names, plus the
engine's keys, and the append-only audit log. Alembic migrations create these tables;
the store layer issues every statement against them."""
from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
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
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.sql.elements import TextClause

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
    # what the request sent that could not be read as an email or phone: data for a
    # reviewer, never compared or indexed (see reconcile.normalize.Unreadable)
    Column("unreadableEmail", String(320)),
    Column("unreadablePhone", String(320)),
    CheckConstraint("\"linkPrecedence\" IN ('primary', 'secondary')", name="ck_contact_precedence"),
    CheckConstraint(
        "(\"linkPrecedence\" = 'primary' AND \"linkedId\" IS NULL)"
        " OR (\"linkPrecedence\" = 'secondary' AND \"linkedId\" IS NOT NULL)",
        name="ck_contact_link_shape",
    ),
    sqlite_autoincrement=True,
)

def _present(column: str) -> TextClause:
    """The rows a partial index on ``column`` holds (migration 0014): those with a value.
    Every query of such a column compares it with a value, which implies the condition, so
    the index still serves it; the insert of a row without one writes no entry there."""
    return text(f'"{column}" IS NOT NULL')


Index("ix_contact_email", contact.c.email)
Index("ix_contact_phone", contact.c.phoneNumber)
# primaries (most contacts) have no linkedId: only secondaries are in the index
Index("ix_contact_linked", contact.c.linkedId, sqlite_where=_present("linkedId"), postgresql_where=_present("linkedId"))
# blocking keys with the id, so "newest N sharing this key" is read from the index alone
Index("ix_contact_mailbox_id", contact.c.emailMailbox, contact.c.id)
Index("ix_contact_local_id", contact.c.emailLocal, contact.c.id)
Index("ix_contact_phone_national_id", contact.c.phoneNational, contact.c.id)
Index("ix_contact_phone_tail_id", contact.c.phoneTail, contact.c.id)
# contacts without a name have no nameKey: only named ones are in the index
Index(
    "ix_contact_name_key_id", contact.c.nameKey, contact.c.id,
    sqlite_where=_present("nameKey"), postgresql_where=_present("nameKey"),
)

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
#: The audit rows ``ix_audit_cause`` holds (migration 0014): not a contact's creation. Each
#: created contact's cause is its request's own (``identify:<uuid>``), so its entry landed on
#: a random page of the index, one page more per write, and no query looks creations up by
#: cause: the reads by cause (what a confirmation or a detachment changed) name causes that
#: never create a contact, and say ``NOT_CREATED`` so that the partial index serves them
#: (SQLite and PostgreSQL use a partial index only for a query whose condition contains its
#: own; a bound parameter in its place would not do).
NOT_CREATED = audit_log.c.action != literal_column("'created'")
Index(
    "ix_audit_cause", audit_log.c.cause,
    sqlite_where=text("action <> 'created'"), postgresql_where=text("action <> 'created'"),
)

pending_merge = Table(
    "pending_merge",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # the two groups, by their primaries when the merge was proposed (left < right)
    Column("leftPrimaryId", Integer, ForeignKey("Contact.id"), nullable=False),
    Column("rightPrimaryId", Integer, ForeignKey("Contact.id"), nullable=False),
    # the pair of contacts that was scored (or that a guard stopped)
    Column("contactId", Integer, ForeignKey("Contact.id")),
    Column("candidateId", Integer, ForeignKey("Contact.id")),
    Column("reason", String(16), nullable=False),  # score | guard | conflict
    Column("guard", String(32)),
    Column("score", Float),
    Column("matchWeight", Float),
    Column("modelVersion", String(64)),
    Column("evidence", JSON),
    Column("status", String(16), nullable=False),  # pending | confirmed | rejected | superseded | resolved
    Column("openedAt", DateTime(timezone=True), nullable=False),
    Column("decidedAt", DateTime(timezone=True)),
    Column("decidedBy", String(64)),
    Column("note", Text),
    # the random audit sample the item was drawn in (link | near; NULL: the uncertain band
    # or a guard) and its chance of being drawn (NULL: 1), see engine/audit_sampling.py
    Column("audit", String(8)),
    Column("inclusionProbability", Float),
    CheckConstraint("\"leftPrimaryId\" < \"rightPrimaryId\"", name="ck_pending_order"),
    CheckConstraint(
        "status IN ('pending', 'confirmed', 'rejected', 'superseded', 'resolved')", name="ck_pending_status"
    ),
    UniqueConstraint("leftPrimaryId", "rightPrimaryId", name="uq_pending_pair"),
    sqlite_autoincrement=True,
)

Index("ix_pending_status_opened", pending_merge.c.status, pending_merge.c.openedAt)
Index("ix_pending_status_score", pending_merge.c.status, pending_merge.c.score)
# the items a change of groups touches (closed as resolved elsewhere when it settles them)
Index("ix_pending_right", pending_merge.c.rightPrimaryId)
Index("ix_pending_contact", pending_merge.c.contactId)
Index("ix_pending_candidate", pending_merge.c.candidateId)
Index("ix_pending_audit_status", pending_merge.c.audit, pending_merge.c.status)

cannot_link = Table(
    "cannot_link",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("leftContactId", Integer, ForeignKey("Contact.id"), nullable=False),
    Column("rightContactId", Integer, ForeignKey("Contact.id"), nullable=False),
    Column("pendingMergeId", Integer, ForeignKey("pending_merge.id")),
    Column("createdAt", DateTime(timezone=True), nullable=False),
    Column("createdBy", String(64)),
    UniqueConstraint("leftContactId", "rightContactId", name="uq_cannot_link_pair"),
    sqlite_autoincrement=True,
)

Index("ix_cannot_link_right", cannot_link.c.rightContactId)

link_guard = Table(
    "link_guard",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contactId", Integer, ForeignKey("Contact.id"), nullable=False),
    Column("field", String(16), nullable=False),  # email | phoneNumber | group
    Column("value", String(320)),
    Column("guard", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("pendingMergeId", Integer, ForeignKey("pending_merge.id")),
    Column("createdAt", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

Index("ix_link_guard_value", link_guard.c.field, link_guard.c.value)
Index("ix_link_guard_contact", link_guard.c.contactId)

# Which groups hold each identifier value, kept by the store in the same transaction as
# every change to a contact's group or liveness: the guards ask "how many groups hold
# this value?" with one capped index read, instead of reading every holder. One row per
# (value, group holding it); ``holders`` counts the group's live contacts with the value.
identifier_group = Table(
    "identifier_group",
    metadata,
    Column("field", String(16), primary_key=True),  # email | phoneNumber
    Column("value", String(320), primary_key=True),
    Column("groupId", Integer, primary_key=True),
    Column("holders", Integer, nullable=False),
    CheckConstraint("holders > 0", name="ck_identifier_group_holders"),
)

Index("ix_identifier_group_group", identifier_group.c.groupId)

#: ``identifier_group`` as the live contacts imply it: what ``reconcile check`` compares the
#: table with, and what a bulk loader that writes ``Contact`` rows directly inserts after them
IDENTIFIER_GROUP_ROWS = """
    SELECT 'email' AS field, email AS value, COALESCE("linkedId", id) AS "groupId", COUNT(*) AS holders
    FROM "Contact" WHERE "deletedAt" IS NULL AND email IS NOT NULL GROUP BY email, COALESCE("linkedId", id)
    UNION ALL
    SELECT 'phoneNumber', "phoneNumber", COALESCE("linkedId", id), COUNT(*)
    FROM "Contact" WHERE "deletedAt" IS NULL AND "phoneNumber" IS NOT NULL GROUP BY "phoneNumber", COALESCE("linkedId", id)
"""
REBUILD_IDENTIFIER_GROUPS = f'INSERT INTO identifier_group (field, value, "groupId", holders) {IDENTIFIER_GROUP_ROWS}'

# A batch re-resolution's proposal to split a live group along a bridge: ``contactId``
# (with what joined only through it) would leave the group of ``primaryId``;
# ``bridgeContactId`` is the contact on the kept side it is linked to. A bridge is
# proposed once, whatever became of it (unique pair), so a second run proposes nothing twice.
split_proposal = Table(
    "split_proposal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("primaryId", Integer, ForeignKey("Contact.id"), nullable=False),
    Column("contactId", Integer, ForeignKey("Contact.id"), nullable=False),
    Column("bridgeContactId", Integer, ForeignKey("Contact.id"), nullable=False),
    Column("keptContactIds", JSON, nullable=False),
    Column("detachedContactIds", JSON, nullable=False),
    Column("score", Float),
    Column("matchWeight", Float),
    Column("modelVersion", String(64)),
    Column("evidence", JSON),
    Column("status", String(16), nullable=False),  # pending | confirmed | rejected | superseded
    Column("openedAt", DateTime(timezone=True), nullable=False),
    Column("decidedAt", DateTime(timezone=True)),
    Column("decidedBy", String(64)),
    Column("note", Text),
    # the detachment (its audit row id) a confirmed split made
    Column("detachmentId", Integer),
    CheckConstraint("status IN ('pending', 'confirmed', 'rejected', 'superseded')", name="ck_split_status"),
    UniqueConstraint("contactId", "bridgeContactId", name="uq_split_bridge"),
    sqlite_autoincrement=True,
)

Index("ix_split_status_opened", split_proposal.c.status, split_proposal.c.openedAt)

label = Table(
    "label",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pendingMergeId", Integer, ForeignKey("pending_merge.id")),
    Column("leftContactId", Integer),
    Column("rightContactId", Integer),
    Column("outcome", String(16), nullable=False),  # match | non-match
    Column("leftRecords", JSON, nullable=False),
    Column("rightRecords", JSON, nullable=False),
    Column("source", String(16), nullable=False),  # review | import
    Column("decidedBy", String(64)),
    Column("decidedAt", DateTime(timezone=True), nullable=False),
    # an imported label's pair and outcome (review.labels.LabelPair.import_key); NULL for
    # review labels. Unique: the same decision imported twice is one label
    Column("importKey", String(64)),
    CheckConstraint("outcome IN ('match', 'non-match')", name="ck_label_outcome"),
    sqlite_autoincrement=True,
)

Index("uq_label_import_key", label.c.importKey, unique=True)

reviewer = Table(
    "reviewer",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("passwordHash", String(256), nullable=False),
    Column("apiTokenHash", String(128), unique=True),
    Column("isAdmin", Boolean, nullable=False, default=False),
    Column("createdAt", DateTime(timezone=True), nullable=False),
    Column("disabledAt", DateTime(timezone=True)),
    # moved on by logout, a password change or disabling: sessions of older generations are void
    Column("sessionGeneration", Integer, nullable=False, server_default=text("0")),
    sqlite_autoincrement=True,
)

model_version = Table(
    "model_version",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("path", String(500), nullable=False),
    Column("createdAt", DateTime(timezone=True), nullable=False),
    Column("metrics", JSON),
    Column("upperThreshold", Float),
    Column("lowerThreshold", Float),
    Column("active", Boolean, nullable=False, default=False),
    Column("activatedAt", DateTime(timezone=True)),
    Column("activatedBy", String(64)),
    # the version that was active before this one, for rollback
    Column("previousVersion", String(64)),
)

# Bulk imports (``reconcile import``, :mod:`reconcile.ingest`): one row per imported file
# (by its SHA-256), whose ``position`` (events committed, in load order) and totals move
# in the same transaction as each batch, so an interrupted import resumes exactly there.
IMPORT_COUNTERS = ("loaded", "created", "linked", "probabilistic", "contacts", "pending", "rejected")
import_run = Table(
    "import_run",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("source", String(500), nullable=False),
    Column("format", String(8), nullable=False),
    Column("records", Integer, nullable=False),
    Column("toLoad", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    *(Column(name, Integer, nullable=False) for name in IMPORT_COUNTERS),
    Column("startedAt", DateTime(timezone=True), nullable=False),
    Column("updatedAt", DateTime(timezone=True), nullable=False),
    Column("finishedAt", DateTime(timezone=True)),
    UniqueConstraint("fingerprint", name="uq_import_run_fingerprint"),
    sqlite_autoincrement=True,
)

# the rows an import refused: line and reason only (the values stay in the file)
import_reject = Table(
    "import_reject",
    metadata,
    Column("runId", Integer, ForeignKey("import_run.id"), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("reason", String(300), nullable=False),
)

# the ``externalId`` a loaded row carried and the contact it created or was answered with;
# erasing the contact deletes the row
import_ref = Table(
    "import_ref",
    metadata,
    Column("runId", Integer, ForeignKey("import_run.id"), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("externalId", String(128), nullable=False),
    Column("contactId", Integer, ForeignKey("Contact.id"), nullable=False),
)

Index("ix_import_ref_external", import_ref.c.externalId)
Index("ix_import_ref_contact", import_ref.c.contactId)

__all__ = ["metadata", "contact", "audit_log", "pending_merge", "cannot_link", "split_proposal", "link_guard", "identifier_group", "label", "reviewer", "model_version", "import_run", "import_reject", "import_ref", "IMPORT_COUNTERS", "LIVE", "IDENTIFIER_GROUP_ROWS", "REBUILD_IDENTIFIER_GROUPS"]
