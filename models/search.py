"""The full-text indexes behind the staff search, kept by the database itself so that no
writer has to remember them: whatever inserts, edits or deletes a message or a patient (the
recording of an inbound message, an erasure, a merge) changes what is found at once.

- PostgreSQL: GIN indexes on expressions — messages in the `portuguese` configuration
  (stemmed: "cirurgias" finds "cirurgia"), patients' name and e-mail in `simple` (names are
  not stemmed) — both over `search_unaccent`, an immutable wrapper of the `unaccent`
  extension (an index may only use immutable functions), so case and accents never matter.
- SQLite: FTS5 tables with external content (`messages`, `users`), `unicode61` with
  diacritics removed, kept by triggers.

Migration 0024 creates them from the statements here; `messaging.search` queries them with
the same expressions (PostgreSQL uses an index only for the very expression it indexes).
These objects are not ORM models: `include_object` tells Alembic's comparison to leave them
alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SearchIndex:
    """One indexed text: the SQLite FTS5 table over `content`'s `columns`, and the
    PostgreSQL index over the same columns in the text search configuration `config`."""

    fts: str
    content: str
    columns: tuple[str, ...]
    config: str
    postgres_index: str

    @property
    def document(self) -> str:
        """The indexed tsvector, its columns qualified (as a query names them)."""
        joined = " || ' ' || ".join(f"coalesce({self.content}.{c}, '')" for c in self.columns)
        return f"to_tsvector('{self.config}'::regconfig, search_unaccent({joined}))"


MESSAGES = SearchIndex("messages_search", "messages", ("text",), "portuguese", "ix_messages_search")
PATIENTS = SearchIndex("patients_search", "users", ("name", "email"), "simple", "ix_users_search")
INDEXES = (MESSAGES, PATIENTS)

POSTGRES_CREATE = (
    "CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public",
    # unaccent() is only STABLE (it reads its dictionary by name); naming the dictionary
    # makes the result depend on the arguments alone.
    """
    CREATE FUNCTION search_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$
    """,
    # An index expression names the bare columns, the queries qualify them.
    *(
        f"CREATE INDEX {i.postgres_index} ON {i.content} USING gin "
        f"({i.document.replace(i.content + '.', '')})"
        for i in INDEXES
    ),
)

POSTGRES_DROP = (
    *(f"DROP INDEX IF EXISTS {i.postgres_index}" for i in INDEXES),
    "DROP FUNCTION IF EXISTS search_unaccent(text)",
)

_TOKENIZER = "tokenize = 'unicode61 remove_diacritics 2'"


def _fts_statements(fts: str, content: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The FTS5 table over the rows (external content: the text is not stored twice) and
    the triggers that keep it."""
    # Every name below is one of this module's constants, never input.
    listed = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    add = f"INSERT INTO {fts}(rowid, {listed}) VALUES (new.id, {new});"  # noqa: S608
    # An external-content table forgets a row when told exactly what it indexed.
    remove = f"INSERT INTO {fts}({fts}, rowid, {listed}) VALUES ('delete', old.id, {old});"  # noqa: S608
    return (
        f"CREATE VIRTUAL TABLE {fts} USING fts5({listed}, content = '{content}', "
        f"content_rowid = 'id', {_TOKENIZER})",
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {content} BEGIN {add} END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {content} BEGIN {remove} END",
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {listed} ON {content} "
        f"BEGIN {remove} {add} END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",  # noqa: S608
    )


SQLITE_CREATE = tuple(
    statement for i in INDEXES for statement in _fts_statements(i.fts, i.content, i.columns)
)
SQLITE_DROP = tuple(
    statement
    for i in INDEXES
    for statement in (
        *(f"DROP TRIGGER IF EXISTS {i.fts}_{change}" for change in ("insert", "delete", "update")),
        f"DROP TABLE IF EXISTS {i.fts}",
    )
)

# FTS5's own tables behind each virtual table.
_FTS_SHADOWS = ("_data", "_idx", "_docsize", "_config", "_content")
SEARCH_OBJECTS = frozenset(
    {i.postgres_index for i in INDEXES}
    | {i.fts + shadow for i in INDEXES for shadow in ("", *_FTS_SHADOWS)}
)


def include_object(
    _object: Any, name: str | None, _type: str, _reflected: bool, _compare_to: Any
) -> bool:
    """Alembic's `include_object` hook: everything but the search objects above."""
    return name not in SEARCH_OBJECTS
