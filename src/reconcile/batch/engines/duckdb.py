"""Re-resolution on DuckDB, embedded: the default, one machine, no service to run.

No extension is ever downloaded (``autoinstall_known_extensions`` off): a query that
would need one fails instead of reaching the network. DuckDB keeps its buffers under
``memory_limit`` (the CLI's ``--memory-limit``; by default a quarter of the machine's
memory, :func:`default_memory_limit`) and spills to a directory beside the snapshot
beyond it, so a batch run beside the service and its database cannot take the machine's
memory; DuckDB's own default (80%) leaves nothing for the Python side of the run
(clustering a million contacts) or anything else. ``preserve_insertion_order`` is off:
no result of the run depends on row order (the flow sorts what it needs), and keeping
it makes DuckDB buffer whole results instead of streaming them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from splink import DuckDBAPI

#: DuckDB's share of the machine's memory when no limit is given
MEMORY_SHARE = 0.25


def _literal(text: str) -> str:
    """``text`` as a SQL string literal: a path or setting with a quote in it (``--snapshot-dir
    "/data/o'brien"``) is a value, not a syntax error. ``SET`` and a view's ``read_parquet``
    take no bound parameters in DuckDB."""
    return "'" + text.replace("'", "''") + "'"


def default_memory_limit() -> str:
    """A quarter of the machine's physical memory, in DuckDB's words (e.g. ``6000MB``)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{int(total * MEMORY_SHARE) // 2**20}MB"


class DuckDBEngine:
    dialect = "duckdb"
    jaro_winkler = "jaro_winkler_similarity"

    def __init__(self, memory_limit: str | None = None, spill_dir: Path | None = None):
        self.con = duckdb.connect()
        self.con.execute("SET autoinstall_known_extensions=false")
        self.con.execute("SET enable_progress_bar=false")
        self.con.execute("SET preserve_insertion_order=false")
        self.con.execute(f"SET memory_limit={_literal(memory_limit or default_memory_limit())}")
        if spill_dir is not None:
            self.con.execute(f"SET temp_directory={_literal(spill_dir.as_posix())}")
        self._api = DuckDBAPI(connection=self.con)

    def database_api(self) -> Any:
        return self._api

    def register(self, parquet: Path, name: str) -> Any:
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({_literal(parquet.as_posix())})")
        return self._api.register(name)

    def rows(self, frame: Any, columns: list[str]) -> pa.Table:
        selected = ", ".join(f'"{c}"' for c in columns)
        return self.con.sql(f"SELECT {selected} FROM {frame.physical_name}").to_arrow_table()

    def close(self) -> None:
        self.con.close()
