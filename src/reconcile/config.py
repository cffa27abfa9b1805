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


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite:///{DEFAULT_DB}"
    default_region: str = "US"
    db_pool_size: int = 8
    api_keys: tuple[str, ...] = field(default_factory=tuple)
    secret_key: str | None = None
    #: False runs the exact rules only (the baseline ``reconcile evaluate`` compares with)
    probabilistic: bool = True
    model_path: str = str(DEFAULT_MODEL)
    upper_threshold: float = 0.99
    lower_threshold: float = 0.80

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        base = cls(
            database_url=_env("RECONCILE_DATABASE_URL", cls.database_url),
            default_region=_env("RECONCILE_DEFAULT_REGION", cls.default_region).upper(),
            db_pool_size=int(_env("RECONCILE_DB_POOL_SIZE", str(cls.db_pool_size))),
            api_keys=tuple(k.strip() for k in os.environ.get("RECONCILE_API_KEYS", "").split(",") if k.strip()),
            secret_key=os.environ.get("RECONCILE_SECRET_KEY") or None,
            probabilistic=_env("RECONCILE_PROBABILISTIC", "1").lower() not in ("0", "false", "no", "off"),
            model_path=_env("RECONCILE_MODEL", cls.model_path),
            upper_threshold=float(_env("RECONCILE_UPPER_THRESHOLD", str(cls.upper_threshold))),
            lower_threshold=float(_env("RECONCILE_LOWER_THRESHOLD", str(cls.lower_threshold))),
        )
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        return replace(base, **overrides)
