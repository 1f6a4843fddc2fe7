"""A database call in a thread of its own (its own connection), for tests of row locks."""

from __future__ import annotations

import threading

from django.db import close_old_connections, connection


def start_in_thread(fn, *, lock_timeout: str) -> tuple[threading.Thread, dict]:
    """Run ``fn`` in a new thread whose connection waits at most ``lock_timeout`` for a lock.

    Returns the started thread and the dict that receives ``value`` or ``error``.
    """
    outcome: dict = {}

    def run():
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SET lock_timeout = '{lock_timeout}'")
            outcome["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcome["error"] = exc
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome
