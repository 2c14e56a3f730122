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

from typing import Any

# PostgreSQL: what each index holds (the query repeats these expressions verbatim).
MESSAGE_DOCUMENT = "to_tsvector('portuguese'::regconfig, search_unaccent(messages.text))"
PATIENT_DOCUMENT = (
    "to_tsvector('simple'::regconfig, "
    "search_unaccent(coalesce(users.name, '') || ' ' || coalesce(users.email, '')))"
)
MESSAGE_QUERY = "to_tsquery('portuguese'::regconfig, search_unaccent(:terms))"
PATIENT_QUERY = "to_tsquery('simple'::regconfig, search_unaccent(:terms))"

POSTGRES_INDEXES = ("ix_messages_search", "ix_users_search")

POSTGRES_CREATE = (
    "CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public",
    # unaccent() is only STABLE (it reads its dictionary by name); naming the dictionary
    # makes the result depend on the arguments alone.
    """
    CREATE FUNCTION search_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$
    """,
    # An index expression names the bare columns (no table), the queries qualify them.
    f"CREATE INDEX ix_messages_search ON messages USING gin "
    f"({MESSAGE_DOCUMENT.replace('messages.', '')})",
    f"CREATE INDEX ix_users_search ON users USING gin ({PATIENT_DOCUMENT.replace('users.', '')})",
)

POSTGRES_DROP = (
    "DROP INDEX IF EXISTS ix_users_search",
    "DROP INDEX IF EXISTS ix_messages_search",
    "DROP FUNCTION IF EXISTS search_unaccent(text)",
)

# SQLite: FTS5 tables over the rows (external content: the text is not stored twice).
MESSAGES_FTS = "messages_search"
PATIENTS_FTS = "patients_search"
_TOKENIZER = "tokenize = 'unicode61 remove_diacritics 2'"
# table, content table, indexed columns
_FTS_TABLES = ((MESSAGES_FTS, "messages", ("text",)), (PATIENTS_FTS, "users", ("name", "email")))


def _fts_statements(fts: str, content: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    listed = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    add = f"INSERT INTO {fts}(rowid, {listed}) VALUES (new.id, {new});"
    # An external-content table forgets a row when told exactly what it indexed.
    remove = f"INSERT INTO {fts}({fts}, rowid, {listed}) VALUES ('delete', old.id, {old});"
    return (
        f"CREATE VIRTUAL TABLE {fts} USING fts5({listed}, content = '{content}', "
        f"content_rowid = 'id', {_TOKENIZER})",
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {content} BEGIN {add} END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {content} BEGIN {remove} END",
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {listed} ON {content} "
        f"BEGIN {remove} {add} END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
    )


SQLITE_CREATE = tuple(
    statement for table in _FTS_TABLES for statement in _fts_statements(*table)
)
SQLITE_DROP = tuple(
    statement
    for fts, _content, _columns in _FTS_TABLES
    for statement in (
        *(f"DROP TRIGGER IF EXISTS {fts}_{change}" for change in ("insert", "delete", "update")),
        f"DROP TABLE IF EXISTS {fts}",
    )
)

# FTS5's own tables behind each virtual table.
_FTS_SHADOWS = ("_data", "_idx", "_docsize", "_config", "_content")
SEARCH_OBJECTS = frozenset(
    {*POSTGRES_INDEXES}
    | {fts + shadow for fts, _c, _cols in _FTS_TABLES for shadow in ("", *_FTS_SHADOWS)}
)


def include_object(
    _object: Any, name: str | None, _type: str, _reflected: bool, _compare_to: Any
) -> bool:
    """Alembic's `include_object` hook: everything but the search objects above."""
    return name not in SEARCH_OBJECTS
