"""The statements every participant request runs, as SQL written once per process.

A participant request reads the participant with their study; trial pages
and answers read the next trials with their questions and items; an answer
stores its response and marks the next trial shown. Built through the ORM
these statements cost more Python than the rest of the request (most of it
compiling the same SQL again each time), so their SQL is written here, from
the models' column lists. Rows become model instances with each field's
database converters and values are stored with each field's preparation,
as the ORM does: the instances are the same as a queryset's
(``Model.from_db``). PostgreSQL and SQLite both run it.

On PostgreSQL these statements are prepared (by psycopg, after five runs on
a connection): planning the trials' statement cost the database more than
running it (0.5 of 0.9 ms of its CPU). Django binds parameters on the client, which cannot prepare, so
these statements alone go through a server-binding cursor
(``STYLESTUDY_PREPARED_STATEMENTS`` turns this off behind a connection pooler
that cannot keep prepared statements, such as PgBouncer before 1.21 in
transaction mode).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model

from .models import (
    Candidate,
    ContentImage,
    Participant,
    Question,
    Response,
    Study,
    StyleImage,
    Trial,
    TrialItem,
)


class _Columns:
    """A model's concrete columns under a table alias, and how a row's slice of them becomes an instance."""

    def __init__(self, model: type[Model], alias: str) -> None:
        self.model = model
        self.fields = model._meta.concrete_fields
        self.sql = ", ".join(f'{alias}."{field.column}"' for field in self.fields)
        self.attnames = [field.attname for field in self.fields]
        # By database vendor: a backend's converters read only settings (the time zone), the same for
        # every connection of that backend.
        self._converters: dict[str, list] = {}

    def __len__(self) -> int:
        return len(self.fields)

    def load(self, values, db) -> Model:
        """The instance of the row slice ``values`` read from the database connection ``db``."""
        converters = self._converters.get(db.vendor)
        if converters is None:
            converters = self._converters[db.vendor] = []
            for i, field in enumerate(self.fields):
                column = field.get_col(self.model._meta.db_table)
                # The backend's, then the field's (as the ORM's compiler applies them).
                if functions := db.ops.get_db_converters(column) + column.get_db_converters(db):
                    converters.append((i, functions, column))
        if converters:
            values = list(values)
            for i, functions, column in converters:
                for convert in functions:
                    values[i] = convert(values[i], column, db)
        return self.model.from_db(db.alias, self.attnames, values)


try:
    from psycopg import Cursor as _ServerBindingCursor
except ImportError:  # SQLite only: nothing to prepare
    _ServerBindingCursor = None


@contextmanager
def _cursor() -> Iterator:
    """A cursor of the default database whose statements are prepared where that is possible.

    It is Django's cursor (connection checks, error translation, query
    logging) around psycopg's server-binding one on PostgreSQL: psycopg
    prepares a statement once it has run ``prepare_threshold`` times (5,
    settings) with the same parameter types, so shapes seen once or twice
    are never prepared. psycopg drops a connection's prepared statements at
    every rollback; they are prepared again after five more runs.
    """
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        if db.vendor != "postgresql" or _ServerBindingCursor is None or not settings.STYLESTUDY_PREPARED_STATEMENTS:
            yield cursor
            return
        client_side, cursor.cursor = cursor.cursor, _ServerBindingCursor(db.connection)
        try:
            yield cursor
        finally:
            cursor.cursor.close()
            cursor.cursor = client_side


_PARTICIPANT = _Columns(Participant, "p")
_STUDY = _Columns(Study, "s")
_TRIAL = _Columns(Trial, "t")
_QUESTION = _Columns(Question, "q")
_RESPONSE = _Columns(Response, "r")


def participant_with_study(*, token: str | None = None, pk: int | None = None, for_update: bool = False
                           ) -> Participant:
    """The participant with this ``token`` (or ``pk``), their study loaded, in one statement.

    ``for_update``: lock the participant's row (not the study's, which every
    participant shares) until the transaction ends.

    Raises:
        Participant.DoesNotExist: no such participant.
    """
    where, value = ('p."token"', token) if token is not None else ('p."id"', pk)
    lock = " FOR UPDATE OF p" if for_update and connection.features.has_select_for_update_of else ""
    with _cursor() as cursor:
        cursor.execute(
            f'SELECT {_PARTICIPANT.sql}, {_STUDY.sql} FROM "{Participant._meta.db_table}" p '
            f'INNER JOIN "{Study._meta.db_table}" s ON s."id" = p."study_id" WHERE {where} = %s{lock}', [value])
        row = cursor.fetchone()
    if row is None:
        raise Participant.DoesNotExist("no such participant")
    db = connections[DEFAULT_DB_ALIAS]
    participant = _PARTICIPANT.load(row[:len(_PARTICIPANT)], db)
    participant.study = _STUDY.load(row[len(_PARTICIPANT):], db)
    return participant


def study_for_entry(slug: str) -> Study:
    """The study with this ``slug`` for its consent page, with whether it has finished stimuli, in one
    statement (``_has_stimuli``, as :func:`~studies.actions.participants.check_study_open` remembers it).

    Raises:
        Study.DoesNotExist: no such study.
    """
    db = connections[DEFAULT_DB_ALIAS]
    with _cursor() as cursor:
        cursor.execute(
            f'SELECT {_STUDY.sql}, EXISTS (SELECT 1 FROM "{Candidate._meta.db_table}" c WHERE c."study_id" = s."id" '
            f'AND c."status" = %s AND c."image" <> %s) FROM "{Study._meta.db_table}" s WHERE s."slug" = %s',
            [Candidate.Status.DONE.value, "", slug])
        row = cursor.fetchone()
    if row is None:
        raise Study.DoesNotExist("no such study")
    study = _STUDY.load(row[:-1], db)
    study._has_stimuli = bool(row[-1])
    return study


def insert_response(*, shown: tuple[Trial, datetime] | None = None,
                    participant: tuple[Participant, dict] | None = None, **values) -> Response:
    """Store a :class:`~studies.models.Response` of ``values`` (field attnames, ``trial_id`` included;
    the rest at their defaults) and return it, as ``Response.objects.create`` would.

    ``shown``: ``(trial, when)``, record ``when`` as the time ``trial`` was
    first shown, unless it already was. ``participant``: ``(participant,
    {attname: value})``, store these fields of the participant (activity,
    completion; the instance already holds them). On PostgreSQL both ride in the
    insert's statement (data-modifying ``WITH`` clauses, which always run to
    completion): an answer is then one statement between its lock and read
    and its commit. Elsewhere they are statements of their own.
    """
    db = connections[DEFAULT_DB_ALIAS]
    fields = [field for field in _RESPONSE.fields if not field.primary_key]
    row = {field.attname: values[field.attname] if field.attname in values else field.get_default()
           for field in fields}
    params = [field.get_db_prep_save(row[field.attname], db) for field in fields]
    returning = ' RETURNING "id"' if db.features.can_return_columns_from_insert else ""
    columns = ", ".join(f'"{field.column}"' for field in fields)
    insert = (f'INSERT INTO "{Response._meta.db_table}" ({columns}) '
              f'VALUES ({", ".join(["%s"] * len(fields))}){returning}')
    updates = []
    if shown is not None:
        trial, when = shown
        updates.append((f'UPDATE "{Trial._meta.db_table}" SET "shown_at" = %s WHERE "id" = %s AND "shown_at" IS NULL',
                        [Trial._meta.get_field("shown_at").get_db_prep_save(when, db), trial.pk]))
    if participant is not None and participant[1]:
        person, changed = participant
        assignments = ", ".join(f'"{Participant._meta.get_field(name).column}" = %s' for name in changed)
        updates.append((f'UPDATE "{Participant._meta.db_table}" SET {assignments} WHERE "id" = %s',
                        [Participant._meta.get_field(name).get_db_prep_save(value, db)
                         for name, value in changed.items()] + [person.pk]))
    with _cursor() as cursor:
        if updates and db.vendor == "postgresql":
            ctes = ", ".join(f"u{i} AS ({sql})" for i, (sql, _params) in enumerate(updates))
            cursor.execute(f"WITH {ctes} {insert}", [p for _sql, ps in updates for p in ps] + params)
        else:
            for sql, update_params in updates:
                cursor.execute(sql, update_params)
            cursor.execute(insert, params)
        pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    if shown is not None:
        trial.shown_at = trial.shown_at or when
    response = Response(id=pk, **row)
    response._state.adding, response._state.db = False, db.alias
    return response


@dataclass(frozen=True)
class ShownItem:
    """An image of a trial as its page and its answer need it: plain values, no model instances."""

    id: int
    slot: int
    candidate_id: int | None
    attention_image: str
    #: The candidate's file, and those of its style and content images ('' for attention-check images).
    image: str
    style_id: int | None
    content_id: int | None
    style_file: str
    content_file: str


def _items_sql(aggregate: str) -> str:
    """A trial's items with their files, one JSON array each (fields as :class:`ShownItem`)."""
    columns = ('i."id", i."slot", i."candidate_id", i."attention_image", c."image", c."style_id", '
               'c."content_id", st."image", co."image"')
    return (f'(SELECT {aggregate.format(columns)} FROM "{TrialItem._meta.db_table}" i '
            f'LEFT JOIN "{Candidate._meta.db_table}" c ON c."id" = i."candidate_id" '
            f'LEFT JOIN "{StyleImage._meta.db_table}" st ON st."id" = c."style_id" '
            f'LEFT JOIN "{ContentImage._meta.db_table}" co ON co."id" = c."content_id" '
            f'WHERE i."trial_id" = t."id")')


def _items_json() -> str:
    if connection.vendor == "postgresql":
        return _items_sql("json_agg(json_build_array({}))::text")
    return _items_sql("json_group_array(json_array({}))")


def _shown_items(text: str | None) -> list[ShownItem]:
    items = [ShownItem(pk, slot, candidate_id, attention or "", image or "", style_id, content_id, style or "",
                       content or "")
             for pk, slot, candidate_id, attention, image, style_id, content_id, style, content
             in json.loads(text or "[]")]
    return sorted(items, key=lambda item: item.slot)


@dataclass(frozen=True)
class Upcoming:
    """A participant's next unanswered trials, in order, and their progress through the rated ones."""

    #: The first unanswered trials (answers come in position order, so the first is the current one);
    #: each with its question, ``shown_items`` (:class:`ShownItem`, by slot) and the participant.
    trials: list[Trial]
    #: Trials that are not practice, all and answered.
    total: int
    done: int


def upcoming_trials(participant: Participant, count: int) -> Upcoming:
    """``participant``'s first ``count`` unanswered trials and their progress, in one statement.

    Only the trials a page shows are read (the current one and the next to
    preload), however long the session: the progress is counted in SQL.
    """
    trial, response = Trial._meta.db_table, Response._meta.db_table
    # The progress counts take the participant as a parameter, not from the row: evaluated once per
    # statement, not once per trial returned.
    with _cursor() as cursor:
        cursor.execute(
            f'SELECT {_TRIAL.sql}, {_QUESTION.sql}, {_items_json()}, '
            f'(SELECT COUNT(*) FROM "{trial}" a WHERE a."participant_id" = %s AND NOT a."is_practice"), '
            f'(SELECT COUNT(*) FROM "{trial}" a INNER JOIN "{response}" r ON r."trial_id" = a."id" '
            f'WHERE a."participant_id" = %s AND NOT a."is_practice") '
            f'FROM "{trial}" t INNER JOIN "{Question._meta.db_table}" q ON q."id" = t."question_id" '
            f'WHERE t."participant_id" = %s AND NOT EXISTS (SELECT 1 FROM "{response}" r WHERE r."trial_id" = t."id") '
            f'ORDER BY t."position" LIMIT %s', [participant.pk] * 3 + [count])
        rows = cursor.fetchall()
    db = connections[DEFAULT_DB_ALIAS]
    questions: dict[int, Question] = {}
    trials = []
    n_trial, n_question = len(_TRIAL), len(_QUESTION)
    for row in rows:
        trial = _TRIAL.load(row[:n_trial], db)
        question = questions.get(trial.question_id)
        if question is None:
            question = questions[trial.question_id] = _QUESTION.load(row[n_trial:n_trial + n_question], db)
        trial.question = question
        trial.participant = participant
        trial.shown_items = _shown_items(row[-3])
        trials.append(trial)
    total, done = (rows[0][-2], rows[0][-1]) if rows else (0, 0)
    return Upcoming(trials, total, done)


def shown_items_of(trial: Trial) -> list[ShownItem]:
    """``trial``'s items as :func:`trials_with_items` reads them (after they were just stored)."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT {_items_json()} FROM "{Trial._meta.db_table}" t WHERE t."id" = %s', [trial.pk])
        return _shown_items(cursor.fetchone()[0])


__all__ = ["ShownItem", "Upcoming", "insert_response", "participant_with_study", "shown_items_of",
           "study_for_entry", "upcoming_trials"]
