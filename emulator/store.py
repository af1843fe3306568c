"""SQLite storage of the emulated tables: one SQL table per entity set, savepoint transactions."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from typing import Any

from .tables import INTEGER_STORAGE, Table

_ROWVERSION = "__rowversion"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _autonumber(table: Table) -> str:
    return f"autonumber:{table.entity_set}"


def now() -> str:
    """Dataverse's DateTimeOffset format, UTC to the second."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """Rows of every table in one SQLite database, plus autonumber and row version counters.

    All calls are synchronous and short; the server runs them on the event loop thread, so a
    change set executed without awaiting in between is isolated from other requests.
    """

    def __init__(
        self, path: str, tables: dict[str, Table], organizations: tuple[tuple[str, str], ...]
    ) -> None:
        self.tables = tables
        self._organizations = organizations
        self._savepoints = count(1)
        self._counters: dict[str, int] = {}
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = ON")
        with self.transaction():
            self._create_schema()
            self._start_counters()
            self._seed()

    def close(self) -> None:
        self._conn.close()

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing block; nests (a change set holds one per operation)."""
        name = f"sp{next(self._savepoints)}"
        self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._conn.execute(f"ROLLBACK TO {name}")
            self._conn.execute(f"RELEASE {name}")
            raise
        self._conn.execute(f"RELEASE {name}")

    # -- schema ----------------------------------------------------------------------------

    def _create_schema(self) -> None:
        for table in self.tables.values():
            definitions = []
            for column in table.columns.values():
                sql_type = "INTEGER" if column.type in INTEGER_STORAGE else "TEXT"
                key = " PRIMARY KEY" if column.name == table.primary_key else ""
                definitions.append(f"{_quote(column.name)} {sql_type}{key}")
            for lookup in table.lookups:
                target = self.tables[lookup.target]
                # Deleting the related row clears the lookup ("Remove Link"), like a referential
                # relationship's default delete behaviour in Dataverse.
                definitions.append(
                    f"{_quote(lookup.column)} TEXT REFERENCES {_quote(target.entity_set)}"
                    f"({_quote(target.primary_key)}) ON DELETE SET NULL"
                )
            definitions.append('"versionnumber" INTEGER NOT NULL')
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_quote(table.entity_set)} ({', '.join(definitions)})"
            )

    def _seed(self) -> None:
        table = self.tables["osot_table_organizations"]
        for guid, name in self._organizations:
            if self.get(table, guid.lower()) is None:
                stamp = now()
                self.insert(
                    table,
                    {
                        table.primary_key: guid.lower(),
                        "osot_organization_name": name,
                        "createdon": stamp,
                        "modifiedon": stamp,
                    },
                )

    def reset(self) -> None:
        """Delete every row, restart the counters, then seed the organizations again."""
        with self.transaction():
            # Children first, so no foreign key work is needed.
            for table in reversed(list(self.tables.values())):
                self._conn.execute(f"DELETE FROM {_quote(table.entity_set)}")
            self._start_counters()
            self._seed()

    # -- counters --------------------------------------------------------------------------

    def _start_counters(self) -> None:
        """Continue after what the database holds (a database file survives restarts).

        The counters live outside SQLite transactions on purpose: Dataverse draws autonumbers
        and row versions from SQL sequences that a rolled-back transaction does not give back,
        so a failed change set leaves a gap in the autonumbers.
        """
        self._counters = {_ROWVERSION: 0}
        for table in self.tables.values():
            select = f"SELECT MAX(versionnumber) FROM {_quote(table.entity_set)}"
            latest = self._conn.execute(select).fetchone()[0] or 0
            self._counters[_ROWVERSION] = max(self._counters[_ROWVERSION], latest)
            if table.autonumber:
                prefix = table.autonumber_prefix
                select = f"SELECT {_quote(table.autonumber)} FROM {_quote(table.entity_set)}"
                suffixes = [
                    value[len(prefix) :]
                    for (value,) in self._conn.execute(select)
                    if value and value.startswith(prefix)
                ]
                numbers = [int(suffix) for suffix in suffixes if suffix.isdigit()]
                self._counters[_autonumber(table)] = max(numbers, default=0)

    def _next(self, counter: str) -> int:
        self._counters[counter] = self._counters.get(counter, 0) + 1
        return self._counters[counter]

    def next_autonumber(self, table: Table) -> int:
        return self._next(_autonumber(table))

    # -- rows ------------------------------------------------------------------------------

    def get(self, table: Table, record_id: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            f"SELECT * FROM {_quote(table.entity_set)} WHERE {_quote(table.primary_key)} = ?",
            (record_id,),
        ).fetchone()
        return dict(row) if row is not None else None

    def rows(self, table: Table) -> list[dict[str, Any]]:
        cursor = self._conn.execute(f"SELECT * FROM {_quote(table.entity_set)} ORDER BY rowid")
        return [dict(row) for row in cursor]

    def insert(self, table: Table, values: dict[str, Any]) -> None:
        values = {**values, "versionnumber": self._next(_ROWVERSION)}
        names = ", ".join(_quote(name) for name in values)
        marks = ", ".join("?" for _ in values)
        self._conn.execute(
            f"INSERT INTO {_quote(table.entity_set)} ({names}) VALUES ({marks})",
            tuple(values.values()),
        )

    def update(self, table: Table, record_id: str, changes: dict[str, Any]) -> None:
        changes = {**changes, "versionnumber": self._next(_ROWVERSION)}
        assignments = ", ".join(f"{_quote(name)} = ?" for name in changes)
        self._conn.execute(
            f"UPDATE {_quote(table.entity_set)} SET {assignments} "
            f"WHERE {_quote(table.primary_key)} = ?",
            (*changes.values(), record_id),
        )

    def delete(self, table: Table, record_id: str) -> bool:
        cursor = self._conn.execute(
            f"DELETE FROM {_quote(table.entity_set)} WHERE {_quote(table.primary_key)} = ?",
            (record_id,),
        )
        return cursor.rowcount > 0
