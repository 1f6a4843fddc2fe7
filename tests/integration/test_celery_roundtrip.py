import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from studies.models import Study
from studies.tasks import ping_task


def test_worker_round_trips_a_task_through_the_database(worker):
    """A worker process receives a task over the broker, reads the test database
    through its own connection and returns the answer through the result backend."""
    owner = get_user_model().objects.create_user("owner", password="x")
    study = Study.objects.create(title="Round trip", slug="round-trip")
    study.owners.add(owner)

    result = ping_task.delay("hello").get(timeout=120)

    assert result["payload"] == "hello"
    assert result["database"] == connection.vendor
    assert result["studies"] == 1, "the worker must see rows the test committed"
    if connection.vendor == "sqlite":
        assert result["database_name"] == str(connection.settings_dict["NAME"])
    assert worker.poll() is None, "the worker process is still alive"


def test_broker_matches_configuration():
    """The embedded default needs no server; the services pass uses Redis."""
    assert settings.CELERY_BROKER_URL.split("://")[0] in {"filesystem", "redis", "amqp"}
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.CELERY_ACCEPT_CONTENT == ["json"]


@pytest.mark.parametrize("name,queue", [("studies.tasks.generate_candidates_task", "gpu"),
                                        ("studies.tasks.score_candidates_task", "gpu"),
                                        ("studies.tasks.ping_task", "cpu")])
def test_tasks_route_to_their_queue(name, queue):
    """Generation and scoring go to GPU workers; everything else to CPU workers."""
    from config.celery import app

    route = app.amqp.router.route({}, name)
    assert route["queue"].name == queue
