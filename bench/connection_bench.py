"""CPU of a web request's database connection handling: psycopg 3 pool or persistent connections.

Each variant runs in its own process with the production settings (the
environment below) against an empty PostgreSQL database it creates (and
drops): ``--requests`` times what Django does around every request that
touches the database (``request_started``, one ``SELECT 1`` standing for the
request's queries, ``request_finished``), single-threaded, so only the
connection handling differs. CPU is this process's and that of the
PostgreSQL backends of the database (``/proc``, 10 ms ticks), per request.

    python bench/connection_bench.py --pg-url postgres://postgres@127.0.0.1:5432/postgres --db-name NAME
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from load_test import (  # noqa: E402
    _check_loopback,
    _drop_database,
    _proc_cpu_s,
    _recreate_database,
    _with_db,
    server_env,
)

#: What each variant sets in the environment (config/settings.py reads it).
VARIANTS = {
    "pool, checked on borrow": {"DATABASE_POOL": "1", "DATABASE_HEALTH_CHECKS": "1"},
    "pool, unchecked": {"DATABASE_POOL": "1", "DATABASE_HEALTH_CHECKS": "0"},
    "persistent, health check per request": {"DATABASE_POOL": "0", "DATABASE_HEALTH_CHECKS": "1"},
    "persistent, unchecked": {"DATABASE_POOL": "0", "DATABASE_HEALTH_CHECKS": "0"},
}


def measure(requests: int) -> dict:
    """In a process whose environment selects the variant: CPU per request cycle."""
    import django

    django.setup()
    from django.core.signals import request_finished, request_started
    from django.db import connection

    def cycle() -> None:
        request_started.send(sender=None)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        request_finished.send(sender=None)

    for _ in range(50):  # opens the pool or the connection
        cycle()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        backends = [pid for (pid,) in cursor.fetchall()]
    request_finished.send(sender=None)
    db0 = sum(_proc_cpu_s(pid) or 0.0 for pid in backends)
    started, wall = time.process_time(), time.perf_counter()
    for _ in range(requests):
        cycle()
    django_cpu, elapsed = time.process_time() - started, time.perf_counter() - wall
    db_cpu = sum(_proc_cpu_s(pid) or 0.0 for pid in backends) - db0
    return {"django_cpu_us": round(1e6 * django_cpu / requests, 1),
            "postgresql_cpu_us": round(1e6 * db_cpu / requests, 1),
            "wall_us": round(1e6 * elapsed / requests, 1), "backends": len(backends)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--db-name", default="stylestudy_connection_bench")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2, help="every variant this many times, alternating")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.requests)))
        return 0
    _check_loopback(args.pg_url)
    _recreate_database(args.pg_url, args.db_name)
    results: dict[str, list[dict]] = {}
    work = tempfile.mkdtemp(prefix="stylestudy-connection-bench-")
    try:
        for _ in range(args.rounds):
            for name, settings in VARIANTS.items():
                env = server_env(_with_db(args.pg_url, args.db_name), Path(work), **settings)
                out = subprocess.run([sys.executable, __file__, "--measure", "--requests", str(args.requests)],
                                     cwd=REPO, env=env, check=True, capture_output=True, text=True)
                results.setdefault(name, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        _drop_database(args.pg_url, args.db_name)
    print(json.dumps({"requests": args.requests, "loadavg": list(os.getloadavg()), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
