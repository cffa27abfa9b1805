"""Re-resolution on DuckDB, embedded: the default, one machine, no service to run.

No extension is ever downloaded (``autoinstall_known_extensions`` off): a query that
would need one fails instead of reaching the network. With ``memory_limit`` (the CLI's
``--memory-limit``) DuckDB keeps its buffers under it and spills to a directory beside
the snapshot instead, so a batch run beside the service cannot take the machine's memory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from splink import DuckDBAPI



class DuckDBEngine:
    dialect = "duckdb"
    jaro_winkler = "jaro_winkler_similarity"

    def __init__(self, memory_limit: str | None = None, spill_dir: Path | None = None):
        self.con = duckdb.connect()
        self.con.execute("SET autoinstall_known_extensions=false")
        self.con.execute("SET enable_progress_bar=false")
        if memory_limit:
            self.con.execute(f"SET memory_limit='{memory_limit}'")
        if spill_dir is not None:
            self.con.execute(f"SET temp_directory='{spill_dir.as_posix()}'")
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
