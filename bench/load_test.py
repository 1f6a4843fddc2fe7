"""Load test: simulated participants through the whole rating flow, then a database audit.

Runs against the production set-up on loopback only: gunicorn (``config/
gunicorn.conf.py``, ``DEBUG=0``) + PostgreSQL + Redis (cache and rate limits).
Every simulated participant is an HTTP client with its own cookies: consent
page, consent, background questionnaire, instructions, then every trial (GET
the page, POST the answer) until the completion page; then the next
participant, until ``--duration`` seconds or ``--max-participants`` are done.

Afterwards the database is audited: each answer the server acknowledged
(302 after the POST) must be stored exactly once, with the submitted value.

Subcommands (the default is ``run``, which does everything)::

    python bench/load_test.py run --participants 200 --duration 60
    python bench/load_test.py seed --database-url URL --data-dir DIR     # migrate, collectstatic, study
    python bench/load_test.py verify --database-url URL --acked FILE     # the audit only

``run`` creates (drops first) the database ``--db-name`` (default
``stylestudy_load``) on the PostgreSQL server of ``--pg-url``; it never
touches another database. Bounded: at most ``--participants`` concurrent
clients, ``--duration`` seconds of load (max 300), loopback addresses only.

Client retry policy (what a participant's browser does by reloading): on 503
or 429 wait ``Retry-After`` (at most 5 s) and send the same request again; on
a connection error wait 0.5 s and retry; a 500 is counted and ends that
participant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
MAX_DURATION_S = 300
MAX_PARTICIPANTS = 1000
CULTURES = ("western", "chinese", "japanese")

_ACTION = re.compile(r'<form method="post" action="([^"]+/trial/\d+)"')
_KIND = re.compile(r'data-kind="([\w-]+)"')
_VALUES = re.compile(r'name="value" value="(\d+)"')
_CHOICES = re.compile(r'name="choice" value="(\d+)"')
_RANKING = re.compile(r'name="ranking" value="([\d,]*)"')
_START = re.compile(r'action="([^"]+/start)"')
_BACKGROUND = re.compile(r'name="cultural_background"')


def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        infos = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise SystemExit(f"{url}: cannot resolve {host!r}: {exc}") from None
    if not infos or not all(a.startswith("127.") or a == "::1" for a in infos):
        raise SystemExit(f"{url}: the load test runs against loopback addresses only, not {host}")


# --- the simulated participants ----------------------------------------------------


@dataclass
class Stats:
    """What the clients saw: latencies per request kind, status counts, acknowledged answers."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    retries: int = 0
    connection_errors: int = 0
    server_errors: int = 0
    retry_pages: int = 0
    retry_pages_with_message: int = 0
    participants_started: int = 0
    participants_finished: int = 0
    participants_left: int = 0
    acked: list[dict] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def record(self, kind: str, seconds: float, status: int) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1


class ParticipantFailed(Exception):
    """A participant could not go on (an unexpected status or page)."""


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"n": len(ordered), "p50_ms": 1000 * q[49], "p95_ms": 1000 * q[94], "p99_ms": 1000 * q[98],
            "max_ms": 1000 * ordered[-1]}


async def _request(client, stats: Stats, kind: str, method: str, url: str, deadline: float, **kw):
    """One logical request with the retry policy; returns the final response."""
    import httpx

    while True:
        t0 = time.perf_counter()
        try:
            response = await client.request(method, url, **kw)
        except (httpx.TransportError, OSError):
            stats.connection_errors += 1
            if time.monotonic() > deadline:
                raise ParticipantFailed(f"{kind}: connection errors until the deadline") from None
            stats.retries += 1
            await asyncio.sleep(0.5)
            continue
        stats.record(kind, time.perf_counter() - t0, response.status_code)
        if response.status_code in (429, 503):
            if response.status_code == 503:
                stats.retry_pages += 1
                text = response.text
                if response.headers.get("Retry-After") and ("try again" in text.lower() or '"retry"' in text):
                    stats.retry_pages_with_message += 1
            if time.monotonic() > deadline:
                raise ParticipantFailed(f"{kind}: still {response.status_code} at the deadline")
            stats.retries += 1
            wait = min(5.0, float(response.headers.get("Retry-After", "1") or 1))
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))
            continue
        if response.status_code >= 500:
            stats.server_errors += 1
            raise ParticipantFailed(f"{kind}: HTTP {response.status_code}")
        return response


def _answer(kind: str, page: str, token: str, position: int) -> tuple[dict, dict]:
    """Form data for a trial page, and what must be stored for it (deterministic per trial)."""
    rng = random.Random(f"{token}:{position}")
    rt = str(rng.randint(400, 4000))
    if kind == "likert":
        points = [int(v) for v in _VALUES.findall(page)]
        value = rng.choice(points)
        return {"value": str(value), "client_rt_ms": rt}, {"value": value}
    if kind == "2afc":
        slots = [int(v) for v in _CHOICES.findall(page)]
        slot = rng.choice(slots)
        return {"choice": str(slot), "client_rt_ms": rt}, {"choice": slot}
    match = _RANKING.search(page)
    if not match:
        raise ParticipantFailed("ranking page without a ranking field")
    order = [int(v) for v in match.group(1).split(",") if v]
    rng.shuffle(order)
    return {"ranking": ",".join(map(str, order)), "client_rt_ms": rt}, {"ranking": order}


async def run_participant(base: str, slug: str, number: int, stats: Stats, deadline: float,
                          *, think_s: float = 0.0) -> None:
    """One participant from the study link to the completion page."""
    import httpx

    # Retries may go on 30 s past the load deadline; new steps stop at it.
    hard_deadline = deadline + 30
    stats.participants_started += 1
    timeout = httpx.Timeout(30.0)
    async with httpx.AsyncClient(base_url=base, timeout=timeout, follow_redirects=False) as client:

        def csrf() -> dict:
            return {"X-CSRFToken": client.cookies.get("csrftoken", "")}

        pid = f"LOAD{number:06d}{secrets.token_hex(4)}"
        entry = f"/s/{slug}/"
        await _request(client, stats, "consent_page", "GET", entry, hard_deadline, params={"PROLIFIC_PID": pid})
        r = await _request(client, stats, "consent", "POST", entry, hard_deadline,
                           data={"decision": "accept", "PROLIFIC_PID": pid}, headers=csrf())
        if r.status_code != 302:
            raise ParticipantFailed(f"consent: HTTP {r.status_code}")
        session = r.headers["Location"]
        token = session.rstrip("/").split("/")[-1]
        while True:
            if time.monotonic() > deadline:
                # The run is over: this participant leaves mid-way (what is acknowledged is audited).
                stats.participants_left += 1
                return
            page = await _request(client, stats, "page", "GET", session, hard_deadline)
            if page.status_code != 200:
                raise ParticipantFailed(f"session page: HTTP {page.status_code}")
            text = page.text
            if _BACKGROUND.search(text):
                data = {"cultural_background": CULTURES[number % 3], "country_grew_up": "Testland",
                        "languages": ["en"], "years_abroad": "1", "art_training": "some", "age_band": "25-34"}
                r = await _request(client, stats, "background", "POST", f"{session}background", hard_deadline,
                                   data=data, headers=csrf())
            elif (action := _ACTION.search(text)) is not None:
                url = action.group(1)
                kind_match = _KIND.search(text)
                position = int(url.rsplit("/", 1)[1])
                data, expected = _answer(kind_match.group(1) if kind_match else "", text, token, position)
                if think_s:
                    await asyncio.sleep(random.uniform(0, 2 * think_s))
                r = await _request(client, stats, "answer", "POST", url, hard_deadline, data=data, headers=csrf())
                if r.status_code == 302:
                    stats.acked.append({"token": token, "position": position, **expected})
            elif (start := _START.search(text)) is not None:
                r = await _request(client, stats, "start", "POST", start.group(1), hard_deadline, headers=csrf())
            else:
                break  # the completion (or screen-out) page: no form left
            if r.status_code != 302:
                raise ParticipantFailed(f"POST: HTTP {r.status_code}: {r.text[:200]}")
    stats.participants_finished += 1


async def run_clients(base: str, slug: str, *, participants: int, duration: float,
                      max_participants: int | None = None, think_s: float = 0.0, ramp_s: float = 0.0,
                      stats: Stats | None = None) -> Stats:
    """``participants`` concurrent clients, each starting participant after participant until ``duration``.

    Client ``i`` starts after ``i * ramp_s / participants`` seconds, so arrivals
    are spread as on a recruiting platform rather than all in the same instant.
    """
    _check_loopback(base)
    stats = stats or Stats()
    deadline = time.monotonic() + duration
    counter = iter(range(10**9))
    budget = max_participants if max_participants is not None else 10**9
    failures: list[str] = []

    async def lane(index: int) -> None:
        nonlocal budget
        if ramp_s:
            await asyncio.sleep(index * ramp_s / participants)
        while time.monotonic() < deadline and budget > 0:
            budget -= 1
            try:
                await run_participant(base, slug, next(counter), stats, deadline, think_s=think_s)
            except ParticipantFailed as exc:
                failures.append(str(exc))

    stats.started = time.perf_counter()
    await asyncio.gather(*(lane(i) for i in range(participants)))
    stats.finished = time.perf_counter()
    stats.failures = failures  # type: ignore[attr-defined]
    return stats


def summarise(stats: Stats) -> dict:
    """Throughput and latency percentiles of a run."""
    elapsed = max(stats.finished - stats.started, 1e-9)
    every = [v for values in stats.latencies.values() for v in values]
    return {
        "elapsed_s": round(elapsed, 2),
        "participants_started": stats.participants_started,
        "participants_finished": stats.participants_finished,
        "participants_left_at_deadline": stats.participants_left,
        "responses_acknowledged": len(stats.acked),
        "responses_per_s": round(len(stats.acked) / elapsed, 1),
        "requests": len(every),
        "requests_per_s": round(len(every) / elapsed, 1),
        "answer_latency": {k: round(v, 1) for k, v in _percentiles(stats.latencies.get("answer", [])).items()},
        "page_latency": {k: round(v, 1) for k, v in _percentiles(stats.latencies.get("page", [])).items()},
        "all_latency": {k: round(v, 1) for k, v in _percentiles(every).items()},
        "statuses": dict(sorted(stats.statuses.items())),
        "retries": stats.retries,
        "connection_errors": stats.connection_errors,
        "server_errors": stats.server_errors,
        "retry_pages": stats.retry_pages,
        "retry_pages_with_message": stats.retry_pages_with_message,
        "failures": sorted(set(getattr(stats, "failures", [])))[:10],
    }


# --- server-side set-up, audit (need Django) -------------------------------------------------


def server_env(database_url: str, data_dir: Path, cache_url: str = "", **extra: str) -> dict[str, str]:
    """Environment of the production set-up on loopback (no TLS, so no secure-only cookies)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONPATH=str(REPO),
        DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Plain HTTP on loopback: TLS is the front proxy's job in production.
        SECURE_SSL_REDIRECT="0", SESSION_COOKIE_SECURE="0", CSRF_COOKIE_SECURE="0",
        DATABASE_URL=database_url,
        STYLESTUDY_DATA_DIR=str(data_dir),
        MEDIA_ROOT=str(data_dir / "media"),
        STATIC_ROOT=str(data_dir / "static"),
        LOG_LEVEL="WARNING",
        # The limits apply per participant and per client address; every
        # simulated participant shares 127.0.0.1, so they are raised (still counted in Redis).
        STYLESTUDY_RATE_LIMIT_PER_MINUTE="100000",
        STYLESTUDY_ENTRY_RATE_LIMIT_PER_MINUTE="100000",
    )
    if cache_url:
        env["CACHE_URL"] = cache_url
        env["CELERY_BROKER_URL"] = cache_url
    env.update(extra)
    return env


def _django(database_url: str, data_dir: Path) -> None:
    os.environ.update(server_env(database_url, data_dir))
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def seed(database_url: str, data_dir: Path, *, slug: str = "load", trials: int = 6) -> str:
    """Migrate, collect static files and create a live study with room for everyone."""
    _django(database_url, data_dir)
    from django.core.management import call_command

    from studies.models import Study
    from tests.participants.factories import make_study

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)
    Study.objects.filter(slug=slug).delete()
    make_study(slug=slug, trials=trials, quota=10**6, contents=4, methods=3)
    return slug


def verify(database_url: str, data_dir: Path, acked: list[dict], slug: str = "load") -> dict:
    """Audit: every acknowledged answer stored exactly once with the submitted value."""
    _django(database_url, data_dir)
    from django.db.models import Count

    from studies.models import Response, Trial

    stored = {}
    rows = Response.objects.filter(trial__participant__study__slug=slug).values_list(
        "trial__participant__token", "trial__position", "value", "choice__slot", "ranking")
    for token, position, value, slot, ranking in rows:
        stored.setdefault((token, position), []).append({"value": value, "choice": slot, "ranking": ranking})
    duplicated_trials = Trial.objects.filter(participant__study__slug=slug).annotate(
        n=Count("response")).filter(n__gt=1).count()
    lost = duplicated = mismatched = 0
    seen = set()
    for item in acked:
        key = (item["token"], item["position"])
        if key in seen:
            duplicated += 1  # acknowledged twice by the server: the client repeated a trial
            continue
        seen.add(key)
        rows_for = stored.get(key, [])
        if not rows_for:
            lost += 1
        elif len(rows_for) > 1:
            duplicated += 1
        else:
            want = {k: v for k, v in item.items() if k in ("value", "choice", "ranking")}
            if any(rows_for[0][k] != v for k, v in want.items()):
                mismatched += 1
    return {
        "acknowledged": len(acked),
        "stored": sum(len(v) for v in stored.values()),
        "lost": lost,
        "duplicated": duplicated + duplicated_trials,
        "mismatched": mismatched,
        "stored_not_acknowledged": len(set(stored) - seen),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(env: dict[str, str], port: int, log_path: Path, *, workers: int | None = None) -> subprocess.Popen:
    """gunicorn with ``config/gunicorn.conf.py`` on ``127.0.0.1:port``; returns when it answers."""
    import httpx

    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    if workers:
        env["GUNICORN_WORKERS"] = str(workers)
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(REPO / "config" / "gunicorn.conf.py"), "config.wsgi"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({proc.returncode}); see {log_path}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    stop_process(proc)
    raise RuntimeError(f"gunicorn did not answer within 60 s; see {log_path}")


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the process group, SIGKILL if it does not stop."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _recreate_database(pg_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise SystemExit(f"--db-name {name!r}: lower-case letters, digits and _ only")
    with psycopg.connect(_with_db(pg_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop_database(pg_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_with_db(pg_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _subprocess_json(args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def command_run(args: argparse.Namespace) -> int:
    _check_loopback(args.pg_url)
    if args.redis_url:
        _check_loopback(args.redis_url)
    duration = min(args.duration, MAX_DURATION_S)
    participants = min(args.participants, MAX_PARTICIPANTS)
    database_url = _with_db(args.pg_url, args.db_name)
    work = Path(tempfile.mkdtemp(prefix="stylestudy-load-"))
    print(f"# database {args.db_name}, work folder {work}", file=sys.stderr)
    _recreate_database(args.pg_url, args.db_name)
    env = {k: v for k, v in os.environ.items()}
    _subprocess_json(["seed", "--database-url", database_url, "--data-dir", str(work)], env)
    port = free_port()
    server = start_gunicorn(server_env(database_url, work, args.redis_url), port, work / "gunicorn.log",
                            workers=args.workers)
    profiler = None
    try:
        if args.profile:
            profiler = _start_py_spy(server.pid, work, duration)
        stats = asyncio.run(run_clients(f"http://127.0.0.1:{port}", "load", participants=participants,
                                        duration=duration, max_participants=args.max_participants,
                                        think_s=args.think, ramp_s=min(args.ramp, duration / 2)))
    finally:
        stop_process(server)
        if profiler is not None:
            profiler.wait(timeout=60)
    summary = summarise(stats)
    acked_path = work / "acked.json"
    acked_path.write_text(json.dumps(stats.acked))
    audit = _subprocess_json(["verify", "--database-url", database_url, "--data-dir", str(work),
                              "--acked", str(acked_path)], env)
    result = {"setup": {"participants": participants, "duration_s": duration, "ramp_s": min(args.ramp, duration / 2),
                        "workers": args.workers or "conf",
                        "cpus": os.cpu_count(), "loadavg_before_after": _loadavg()},
              "load": summary, "audit": audit}
    print(json.dumps(result, indent=2))
    if not args.keep:
        _drop_database(args.pg_url, args.db_name)
    ok = audit["lost"] == 0 and audit["duplicated"] == 0 and audit["mismatched"] == 0 and summary["server_errors"] == 0
    print("PASS: every acknowledged response stored exactly once" if ok else "FAIL", file=sys.stderr)
    return 0 if ok else 1


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _start_py_spy(pid: int, work: Path, duration: float) -> subprocess.Popen | None:
    import shutil

    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("# py-spy not installed: no profile", file=sys.stderr)
        return None
    out = work / "profile.txt"
    print(f"# py-spy profile of the gunicorn workers -> {out}", file=sys.stderr)
    return subprocess.Popen([exe, "record", "--subprocesses", "--pid", str(pid), "--duration", str(int(duration)),
                             "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="set up, load, audit (the default)")
    for p in (parser, run):
        p.add_argument("--participants", type=int, default=200, help="concurrent simulated participants")
        p.add_argument("--duration", type=float, default=60, help=f"seconds of load (at most {MAX_DURATION_S})")
        p.add_argument("--max-participants", type=int, default=None, help="stop after this many participants")
        p.add_argument("--ramp", type=float, default=10.0, help="seconds over which the clients start")
        p.add_argument("--think", type=float, default=0.0, help="mean seconds a participant looks at a trial")
        p.add_argument("--pg-url", default=os.environ.get("LOAD_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
        p.add_argument("--db-name", default="stylestudy_load")
        p.add_argument("--redis-url", default=os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/9"))
        p.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: the config's)")
        p.add_argument("--profile", action="store_true", help="record a py-spy profile of the server")
        p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    s = sub.add_parser("seed")
    s.add_argument("--database-url", required=True)
    s.add_argument("--data-dir", type=Path, required=True)
    v = sub.add_parser("verify")
    v.add_argument("--database-url", required=True)
    v.add_argument("--data-dir", type=Path, required=True)
    v.add_argument("--acked", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "seed":
        print(json.dumps({"slug": seed(args.database_url, args.data_dir)}))
        return 0
    if args.command == "verify":
        print(json.dumps(verify(args.database_url, args.data_dir, json.loads(args.acked.read_text()))))
        return 0
    return command_run(args)


if __name__ == "__main__":
    sys.exit(main())
