"""Re-resolution on DuckDB, embedded: the default, one machine, no service to run.

No extension is ever downloaded (``autoinstall_known_extensions`` off): a query that
would need one fails instead of reaching the network. DuckDB spills to a temporary
directory beside the snapshot when the pairs outgrow memory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from splink import DuckDBAPI



class DuckDBEngine:
    dialect = "duckdb"

    def __init__(self, memory_limit: str | None = None):
        self.con = duckdb.connect()
        self.con.execute("SET autoinstall_known_extensions=false")
        if memory_limit:
            self.con.execute(f"SET memory_limit='{memory_limit}'")
        self._api = DuckDBAPI(connection=self.con)

    def database_api(self) -> Any:
        return self._api

    def register(self, parquet: Path, name: str) -> Any:
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{parquet.as_posix()}')")
        return self._api.register(name)

    def rows(self, frame: Any, columns: list[str]) -> pa.Table:
        selected = ", ".join(f'"{c}"' for c in columns)
        return self.con.sql(f"SELECT {selected} FROM {frame.physical_name}").to_arrow_table()

    def close(self) -> None:
        self.con.close()
