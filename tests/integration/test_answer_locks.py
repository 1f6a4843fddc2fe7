"""Answers on PostgreSQL: the participant's row lock orders one participant's answers; nothing else waits.

The answer's statements are written in SQL (``studies.participant_sql``):
these check that its lock is the participant's row only and that the trials
are read after the lock is held, so an answer that waited sees the one
committed before it. Row locks are PostgreSQL's, so these run on the
services pass only.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction

from studies.actions.participants import (
    RecruiterInfo,
    do_consent,
    do_read_instructions,
    do_record_response,
    do_submit_background,
)
from studies.models import Response, Study
from studies.participant_sql import participant_with_study
from tests.participants.factories import BACKGROUND_POST, make_study
from tests.participants.test_request_cost import (
    answer_for_trial,
    fail_the_last_trial_as_an_attention_check,
    walk_session_counting_queries,
)

from .threads import start_in_thread

pytestmark = pytest.mark.django_db(transaction=True)


def _start(fn):
    return start_in_thread(fn, lock_timeout="5s")


def _finish(thread, outcome, timeout: float = 10):
    thread.join(timeout)
    assert not thread.is_alive(), "the answer is still waiting"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.fixture
def in_trials(expect_services):
    """A participant of a new study at their first trial, and that trial (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    study = make_study()
    participant = do_consent(study, RecruiterInfo(), language="en")
    participant = do_submit_background(participant, BACKGROUND_POST)
    do_read_instructions(participant)
    return participant, participant.trials.select_related("question").order_by("position").first()


def test_an_answer_that_waited_for_the_lock_sees_the_answer_before_it(in_trials):
    participant, trial = in_trials
    with transaction.atomic():
        # The first submission holds the lock and has stored its answer, not yet committed.
        participant_with_study(pk=participant.pk, for_update=True)
        first = do_record_response(participant, trial.position, answer_for_trial(trial))
        assert first is not None
        thread, outcome = _start(lambda: do_record_response(participant, trial.position, answer_for_trial(trial)))
        time.sleep(0.5)
        assert thread.is_alive()  # the repeat waits for the participant's lock
    assert _finish(thread, outcome) is None  # it then finds the trial answered: nothing stored twice
    assert Response.objects.filter(trial=trial).count() == 1


def test_an_answer_does_not_wait_for_the_study_row(in_trials):
    participant, trial = in_trials
    study = participant.study
    with transaction.atomic():
        # A researcher's edit holds the study row; participants keep answering.
        list(Study.objects.select_for_update().filter(pk=study.pk))
        thread, outcome = _start(lambda: do_record_response(participant, trial.position, answer_for_trial(trial)))
        stored = _finish(thread, outcome)
    assert stored is not None and Response.objects.filter(trial=trial).count() == 1


def test_queries_of_a_whole_session_on_postgresql(expect_services, django_assert_max_num_queries):
    """The query ceilings on the production database: trial page ≤ 3, image ≤ 1, answer with the next
    page ≤ 5, its BEGIN and COMMIT included (the next trial's shown time rides in the response's insert)."""
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL ceilings: PostgreSQL only")
    walk_session_counting_queries(django_assert_max_num_queries)


def _prepared_statements() -> dict[str, tuple[str, object]]:
    """name -> (statement, prepare time) of this connection's prepared statements."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement, prepare_time FROM pg_prepared_statements")
        return {name: (sql, prepared_at) for name, sql, prepared_at in cursor.fetchall()}


def _answer_all(participant) -> int:
    answered = 0
    while (trial := participant.trials.filter(response__isnull=True).order_by("position").first()) is not None:
        assert do_record_response(participant, trial.position, answer_for_trial(trial)) is not None
        answered += 1
    return answered


def _new_participant(study):
    participant = do_submit_background(do_consent(study, RecruiterInfo(), language="en"), BACKGROUND_POST)
    do_read_instructions(participant)
    return participant


def test_participant_statements_are_prepared_once_per_connection(in_trials, settings):
    """On PostgreSQL the lock-and-read, the trials and the response insert become prepared statements
    after five runs and stay prepared (not prepared again for later answers); with
    ``STYLESTUDY_PREPARED_STATEMENTS`` off, nothing is prepared."""
    participant, _trial = in_trials
    settings.STYLESTUDY_PREPARED_STATEMENTS = False
    connection.close()  # a new connection: nothing prepared yet
    assert _answer_all(participant) >= 5
    assert _prepared_statements() == {}
    settings.STYLESTUDY_PREPARED_STATEMENTS = True
    for _ in range(3):  # each kind of answer (rating, choice, ranking) five times or more
        _answer_all(_new_participant(participant.study))
    first = _prepared_statements()
    statements = [sql for sql, _at in first.values()]
    assert any("FOR UPDATE OF p" in sql for sql in statements)
    assert any("NOT EXISTS" in sql and "ORDER BY" in sql for sql in statements)
    assert any(sql.lstrip().startswith(("INSERT", "WITH")) and "studies_response" in sql for sql in statements)
    # Two more sessions on the same connection: every statement prepared above is still the same
    # prepared statement (same name, same preparation time), not dropped and prepared again.
    for _ in range(2):
        _answer_all(_new_participant(participant.study))
    later = _prepared_statements()
    assert {name: later.get(name) for name in first} == first


def test_a_failed_attention_check_as_the_last_answer_on_postgresql(expect_services):
    """The exclusion, the failure count and the completion written by the response's one statement."""
    if connection.vendor != "postgresql":
        pytest.skip("the answer's one-statement write: PostgreSQL only")
    fail_the_last_trial_as_an_attention_check()
