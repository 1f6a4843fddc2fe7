"""Integration tests run twice by ``make test``: on the embedded default (SQLite
+ file-system broker) and on PostgreSQL + Redis (``STYLESTUDY_EXPECT_SERVICES=1``)."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connection

from tests.workers import celery_worker, purge_queues


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture
def expect_services() -> bool:
    """Under the services pass, insist that PostgreSQL and Redis are really in use."""
    if os.environ.get("STYLESTUDY_EXPECT_SERVICES") == "1":
        assert connection.vendor == "postgresql", f"expected PostgreSQL, got {connection.vendor}"
        assert settings.CELERY_BROKER_URL.startswith("redis://"), settings.CELERY_BROKER_URL
        return True
    return False


@pytest.fixture
def worker(transactional_db, tmp_path, expect_services):
    """A real Celery worker process on the configured broker and the test database."""
    purge_queues()
    log = tmp_path / "worker.log"
    with celery_worker(log_path=log) as proc:
        proc.log_path = log
        yield proc
