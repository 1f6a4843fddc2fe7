"""Celery tasks: thin wrappers that load rows by id, call stylecore or analysis, store results."""

from __future__ import annotations

import socket

from celery import shared_task
from django.db import connection


@shared_task(name="studies.tasks.ping_task")
def ping_task(payload: str) -> dict:
    """Round-trip check: echoes ``payload`` with the worker's host and database vendor."""
    from studies.models import Study

    return {
        "payload": payload,
        "worker": socket.gethostname(),
        "database": connection.vendor,
        "database_name": str(connection.settings_dict["NAME"]),
        "studies": Study.objects.count(),
    }
