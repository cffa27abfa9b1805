"""Configuration from environment variables with safe defaults.

Every variable is documented in the README; ``Settings.from_env`` is the only place
that reads the environment, so tests build a ``Settings`` directly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB = PROJECT_ROOT / "data" / "reconcile.db"
DEFAULT_MODEL = PROJECT_ROOT / "models" / "default.json"
#: see Settings.min_heldout_pairs
MIN_HELDOUT_PAIRS_DEFAULT = 50


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _csv(name: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in os.environ.get(name, "").split(",") if v.strip())


def _rate(name: str, default: float) -> float:
    value = float(_env(name, str(default)))
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be a probability from 0 to 1, not {value}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite:///{DEFAULT_DB}"
    default_region: str = "US"
    db_pool_size: int = 8
    #: seconds a request waits for a database lock (SQLite's write lock, PostgreSQL's row,
    #: table and advisory locks) before it is answered 503 with Retry-After
    db_lock_timeout_seconds: float = 5.0
    #: seconds one PostgreSQL statement of the service may run before a 503 (0: no limit)
    db_statement_timeout_seconds: float = 30.0
    api_keys: tuple[str, ...] = field(default_factory=tuple)
    secret_key: str | None = None
    #: mark the review UI's session cookie Secure (serve it over HTTPS only)
    session_cookie_secure: bool = False
    #: failed logins allowed per account, and per client address, within the window
    #: (counted in each worker process) before further tries get a 429
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_window_seconds: float = 300.0
    #: password checks (scrypt) running at once per worker process; more get a 503 at once
    login_hash_slots: int = 1
    #: False runs the exact rules only (the baseline ``reconcile evaluate`` compares with)
    probabilistic: bool = True
    model_path: str = str(DEFAULT_MODEL)
    upper_threshold: float = 0.999
    #: below it a near miss is not a question for a person. 0.9975, not 0.99: with the
    #: shipped model the band [0.99, 0.9975) held namesakes with similar addresses
    #: (john.smith@ and john.smith84@, the same name): 3-7% the same person on tuning
    #: seeds 3 and 4, three quarters of the queue (bench/README.md, queue_mix)
    lower_threshold: float = 0.9975
    #: how often (seconds) each worker checks the model registry for a newly active model
    model_poll_seconds: float = 2.0
    #: extra placeholder values never linked on (added to the built-in patterns in guards.py)
    blocked_emails: tuple[str, ...] = field(default_factory=tuple)
    blocked_phones: tuple[str, ...] = field(default_factory=tuple)
    #: an identifier carrying more than this many clearly different names is shared
    max_names_per_identifier: int = 1
    #: an identifier already held by more than this many separate groups (kept apart by
    #: other guards) is shared by many people and no longer links by itself
    max_groups_per_identifier: int = 10
    #: a link that would make a group larger than this is held for review
    max_group_size: int = 25
    #: a merge of two groups that both have at least this many contacts is held for review
    large_group_size: int = 6
    #: candidates fetched per blocking key for the probabilistic stage
    candidates_per_key: int = 20
    #: ``reconcile resolve``: a blocking key value held by more than this many live
    #: contacts pairs its holders only together with a second key (batch/model_settings)
    batch_block_cap: int = 100
    #: ``reconcile resolve --engine spark`` on a ``local[...]`` master: the one JVM's
    #: ``spark.driver.memory`` (Spark's 1g default failed on the blocked pairs of 100k
    #: contacts); a cluster keeps its own settings
    spark_driver_memory: str = "2g"
    #: hold (for review) a nameless request's link on a phone alone when its new email
    #: names none of the phone's named holders (engine/guards.Guards.borrowed_phone)
    borrowed_phone_guard: bool = True
    #: decided held-out label pairs a model comparison needs before activation is allowed
    #: without --force (fewer cannot tell two models apart)
    min_heldout_pairs: int = MIN_HELDOUT_PAIRS_DEFAULT
    #: chance that an automatic link next to the upper threshold is put in the review
    #: queue as an audit item (halved per 4-bit stratum further up; 0: no link audit).
    #: The three audit rates are sized to a budget of reviewers' time, not to a share of
    #: links: the interval on precision narrows with the number of decided items, so a
    #: few items per 1,000 events suffice (engine/audit_sampling.py, "Sized to a budget")
    audit_link_rate: float = 0.1
    #: chance that a close non-link (the best group scored just below the lower
    #: threshold) is put in the queue as an audit item (halved 4 bits further down)
    audit_near_rate: float = 0.01
    #: how far (match-weight bits) below the lower threshold a non-link counts as close
    audit_near_bits: float = 8.0
    #: chance that a pair a shared-identifier guard held apart, and which the model
    #: scores below the lower threshold (a clear non-match: the guard's "no link" stands
    #: without a person), is still put in the queue as an audit item
    audit_held_rate: float = 0.02
    #: seed of the audit draw (a hash of seed and pair): change it to draw other pairs
    audit_seed: str = "audit"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        base = cls(
            database_url=_env("RECONCILE_DATABASE_URL", cls.database_url),
            default_region=_env("RECONCILE_DEFAULT_REGION", cls.default_region).upper(),
            db_pool_size=int(_env("RECONCILE_DB_POOL_SIZE", str(cls.db_pool_size))),
            db_lock_timeout_seconds=float(_env("RECONCILE_DB_LOCK_TIMEOUT_SECONDS", str(cls.db_lock_timeout_seconds))),
            db_statement_timeout_seconds=float(
                _env("RECONCILE_DB_STATEMENT_TIMEOUT_SECONDS", str(cls.db_statement_timeout_seconds))
            ),
            api_keys=_csv("RECONCILE_API_KEYS"),
            secret_key=os.environ.get("RECONCILE_SECRET_KEY") or None,
            session_cookie_secure=_env("RECONCILE_SESSION_COOKIE_SECURE", "0").lower() in ("1", "true", "yes", "on"),
            login_failures_per_account=int(
                _env("RECONCILE_LOGIN_FAILURES_PER_ACCOUNT", str(cls.login_failures_per_account))
            ),
            login_failures_per_address=int(
                _env("RECONCILE_LOGIN_FAILURES_PER_ADDRESS", str(cls.login_failures_per_address))
            ),
            login_window_seconds=float(_env("RECONCILE_LOGIN_WINDOW_SECONDS", str(cls.login_window_seconds))),
            login_hash_slots=int(_env("RECONCILE_LOGIN_HASH_SLOTS", str(cls.login_hash_slots))),
            probabilistic=_env("RECONCILE_PROBABILISTIC", "1").lower() not in ("0", "false", "no", "off"),
            model_path=_env("RECONCILE_MODEL", cls.model_path),
            upper_threshold=float(_env("RECONCILE_UPPER_THRESHOLD", str(cls.upper_threshold))),
            lower_threshold=float(_env("RECONCILE_LOWER_THRESHOLD", str(cls.lower_threshold))),
            model_poll_seconds=float(_env("RECONCILE_MODEL_POLL_SECONDS", str(cls.model_poll_seconds))),
            blocked_emails=_csv("RECONCILE_BLOCKED_EMAILS"),
            blocked_phones=_csv("RECONCILE_BLOCKED_PHONES"),
            max_names_per_identifier=int(
                _env("RECONCILE_MAX_NAMES_PER_IDENTIFIER", str(cls.max_names_per_identifier))
            ),
            max_groups_per_identifier=int(
                _env("RECONCILE_MAX_GROUPS_PER_IDENTIFIER", str(cls.max_groups_per_identifier))
            ),
            max_group_size=int(_env("RECONCILE_MAX_GROUP_SIZE", str(cls.max_group_size))),
            large_group_size=int(_env("RECONCILE_LARGE_GROUP_SIZE", str(cls.large_group_size))),
            candidates_per_key=int(_env("RECONCILE_CANDIDATES_PER_KEY", str(cls.candidates_per_key))),
            batch_block_cap=int(_env("RECONCILE_BATCH_BLOCK_CAP", str(cls.batch_block_cap))),
            spark_driver_memory=_env("RECONCILE_SPARK_DRIVER_MEMORY", cls.spark_driver_memory),
            borrowed_phone_guard=_env("RECONCILE_BORROWED_PHONE_GUARD", "1").lower() not in ("0", "false", "no", "off"),
            min_heldout_pairs=int(_env("RECONCILE_MIN_HELDOUT_PAIRS", str(cls.min_heldout_pairs))),
            audit_link_rate=_rate("RECONCILE_AUDIT_LINK_RATE", cls.audit_link_rate),
            audit_near_rate=_rate("RECONCILE_AUDIT_NEAR_RATE", cls.audit_near_rate),
            audit_held_rate=_rate("RECONCILE_AUDIT_HELD_RATE", cls.audit_held_rate),
            audit_near_bits=float(_env("RECONCILE_AUDIT_NEAR_BITS", str(cls.audit_near_bits))),
            audit_seed=_env("RECONCILE_AUDIT_SEED", cls.audit_seed),
        )
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        return replace(base, **overrides)
