"""Load test: simulated participants through the whole rating flow, then a database audit.

Runs against the production set-up on loopback only: gunicorn (``config/
gunicorn.conf.py``, ``DEBUG=0``) + PostgreSQL + Redis (cache and rate limits).
Every simulated participant is an HTTP client with its own cookies: consent
page, consent, background questionnaire, instructions, then every trial (its
images, then the answer POST, whose response is the next trial's page) until
the completion page; then the next participant, until ``--duration`` seconds
or ``--max-participants`` are done.

Afterwards the database is audited: each answer the server acknowledged
(200 after the POST) must be stored exactly once, with the submitted value.

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
from urllib.parse import urlencode, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
MAX_DURATION_S = 300
MAX_PARTICIPANTS = 1000
#: Signed image URLs live half to all of this; nginx lets browsers cache them for the half.
IMAGE_URL_MAX_AGE = 7200
CULTURES = ("western", "chinese", "japanese")
#: A participant's requests before the first trial: consent, background questionnaire, instructions.
ARRIVAL_KINDS = ("consent_page", "consent", "entry_page", "background", "start")

_ACTION = re.compile(r'<form method="post" action="([^"]+/trial/\d+)"')
_KIND = re.compile(r'data-kind="([\w-]+)"')
_VALUES = re.compile(r'name="value" value="(\d+)"')
_CHOICES = re.compile(r'name="choice" value="(\d+)"')
_RANKING = re.compile(r'name="ranking" value="([\d,]*)"')
_START = re.compile(r'action="([^"]+/start)"')
_BACKGROUND = re.compile(r'name="cultural_background"')
# What a browser loads from a trial page: its images and the next trial's prefetched ones.
_IMAGES = re.compile(r'<img src="([^"]+)"|<link rel="prefetch" href="([^"]+)"')
_MAX_AGE = re.compile(r"max-age=(\d+)")


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
    image_bytes: int = 0
    participants_started: int = 0
    participants_finished: int = 0
    participants_left: int = 0
    acked: list[dict] = field(default_factory=list)
    #: When each answer was acknowledged and each arrival request answered (perf_counter):
    #: the steady-state window of the CPU accounting is the time after the last arrival.
    acked_at: list[float] = field(default_factory=list)
    last_arrival_at: float = 0.0
    started: float = 0.0
    finished: float = 0.0

    def record(self, kind: str, seconds: float, status: int) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if kind in ARRIVAL_KINDS:
            self.last_arrival_at = time.perf_counter()


class ParticipantFailed(Exception):
    """A participant could not go on (an unexpected status or page)."""


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"n": len(ordered), "p50_ms": 1000 * q[49], "p95_ms": 1000 * q[94], "p99_ms": 1000 * q[98],
            "max_ms": 1000 * ordered[-1]}


class Response:
    """The status, headers (lower-case names) and body of an HTTP response."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class Browser:
    """A participant's browser: its cookies and keep-alive HTTP/1.1 connections to one server.

    The requests are written and parsed on asyncio streams rather than by a
    general HTTP client: the load generator shares the server's cores, and a
    general client costs several times the CPU of the request it measures.
    Like a browser it keeps up to :attr:`MAX_CONNECTIONS` connections open
    between requests, sends the cookies it was given, and resends a request
    once on a fresh connection when a reused one was closed before it
    answered. Bodies by ``Content-Length``, chunked, or up to the close; any
    transport or protocol failure (and no answer within ``timeout`` seconds)
    raises :class:`ConnectionError`.
    """

    MAX_CONNECTIONS = 6
    #: An idle connection is dropped before the server's keep-alive (gunicorn: 5 s) closes it.
    IDLE_S = 4.0

    def __init__(self, base: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(base)
        self.host, self.port, self.netloc = parts.hostname, parts.port or 80, parts.netloc
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc) -> None:
        for _reader, writer, _since in self._idle:
            writer.close()
        self._idle.clear()

    async def request(self, method: str, url: str, *, params: dict | None = None, data: dict | None = None,
                      headers: dict | None = None) -> Response:
        if params:
            url = f"{url}?{urlencode(params)}"
        lines = [f"{method} {url} HTTP/1.1", f"Host: {self.netloc}"]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        body = b""
        if data is not None:
            body = urlencode(data, doseq=True).encode()
            lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        while True:
            reader, writer, reused = await self._connection()
            started = time.monotonic()
            timer = asyncio.get_running_loop().call_later(self.timeout, writer.transport.abort)
            answered = False
            try:
                writer.write(message)
                head = await reader.readuntil(b"\r\n\r\n")
                answered = True
                response, keep = await self._read(reader, method, head)
            except (OSError, EOFError, asyncio.LimitOverrunError, ValueError, IndexError) as exc:
                writer.close()
                if reused and not answered and time.monotonic() - started < self.timeout:
                    continue  # the server closed the idle connection: once more on a new one
                raise ConnectionError(f"{method} {url}: {exc!r}") from None
            finally:
                timer.cancel()
            if keep and len(self._idle) < self.MAX_CONNECTIONS:
                self._idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()
            return response

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        now = time.monotonic()
        while self._idle:
            reader, writer, since = self._idle.pop()
            if now - since < self.IDLE_S and not reader.at_eof():
                return reader, writer, True
            writer.close()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
        except asyncio.TimeoutError:  # not an OSError before Python 3.11
            raise ConnectionError(f"no connection to {self.netloc} within {self.timeout} s") from None
        return reader, writer, False

    async def _read(self, reader: asyncio.StreamReader, method: str, head: bytes) -> tuple[Response, bool]:
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        version, status = status_line.split(" ", 2)[:2]
        status_code = int(status)
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                self._store_cookie(value)
            else:
                headers[name] = value
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if method == "HEAD" or status_code in (204, 304) or status_code < 200:
            content = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            content = await self._read_chunked(reader)
        elif "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        else:
            content, keep = await reader.read(), False  # the body ends with the connection
        return Response(status_code, headers, content), keep

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)

    def _store_cookie(self, header: str) -> None:
        pair, *attributes = header.split(";")
        name, _, value = pair.strip().partition("=")
        if any(a.strip().lower() == "max-age=0" for a in attributes):
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value


async def _request(client: Browser, stats: Stats, kind: str, method: str, url: str, deadline: float, **kw):
    """One logical request with the retry policy; returns the final response."""
    while True:
        t0 = time.perf_counter()
        try:
            response = await client.request(method, url, **kw)
        except OSError:
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
                if response.headers.get("retry-after") and ("try again" in text.lower() or '"retry"' in text):
                    stats.retry_pages_with_message += 1
            if time.monotonic() > deadline:
                raise ParticipantFailed(f"{kind}: still {response.status_code} at the deadline")
            stats.retries += 1
            wait = min(5.0, float(response.headers.get("retry-after", "1") or 1))
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))
            continue
        if response.status_code >= 500:
            stats.server_errors += 1
            raise ParticipantFailed(f"{kind}: HTTP {response.status_code}")
        return response


class BrowserCache:
    """A participant's HTTP cache: fresh URLs are not requested again, stale ones are revalidated."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, str]] = {}  # url -> (fresh until, etag)

    def fresh(self, url: str) -> bool:
        entry = self.entries.get(url)
        return entry is not None and entry[0] > time.monotonic()

    def headers(self, url: str) -> dict:
        entry = self.entries.get(url)
        return {"If-None-Match": entry[1]} if entry and entry[1] else {}

    def store(self, url: str, response) -> None:
        control = response.headers.get("cache-control", "")
        match = _MAX_AGE.search(control)
        if "no-store" in control or not match:
            return
        self.entries[url] = (time.monotonic() + int(match.group(1)), response.headers.get("etag", ""))


async def fetch_images(client, stats: Stats, page: str, cache: BrowserCache, deadline: float) -> None:
    """Load the page's images as a browser does: in parallel (6 at a time), skipping fresh cached ones."""
    urls = []
    for img, prefetch in _IMAGES.findall(page):
        url = (img or prefetch).replace("&amp;", "&")
        if url not in urls and not cache.fresh(url):
            urls.append(url)
    limit = asyncio.Semaphore(6)

    async def one(url: str) -> None:
        async with limit:
            r = await _request(client, stats, "image", "GET", url, deadline, headers=cache.headers(url))
            if r.status_code not in (200, 304):
                raise ParticipantFailed(f"image: HTTP {r.status_code}")
            stats.image_bytes += len(r.content)
            cache.store(url, r)

    await asyncio.gather(*(one(u) for u in urls))


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
                          *, think_s: float = 0.0, images: bool = True) -> None:
    """One participant from the study link to the completion page."""
    # Retries may go on 30 s past the load deadline; new steps stop at it.
    hard_deadline = deadline + 30
    stats.participants_started += 1
    async with Browser(base) as client:

        def csrf() -> dict:
            return {"X-CSRFToken": client.cookies.get("csrftoken", "")}

        cache = BrowserCache()
        pid = f"LOAD{number:06d}{secrets.token_hex(4)}"
        entry = f"/s/{slug}/"
        await _request(client, stats, "consent_page", "GET", entry, hard_deadline, params={"PROLIFIC_PID": pid})
        r = await _request(client, stats, "consent", "POST", entry, hard_deadline,
                           data={"decision": "accept", "PROLIFIC_PID": pid}, headers=csrf())
        if r.status_code != 302:
            raise ParticipantFailed(f"consent: HTTP {r.status_code}")
        session = r.headers["location"]
        token = session.rstrip("/").split("/")[-1]
        text = ""  # the page to act on: from a GET of the session, or the answer's response
        page_kind = "entry_page"  # the background and instructions pages; "page" once started
        while True:
            if time.monotonic() > deadline:
                # The run is over: this participant leaves mid-way (what is acknowledged is audited).
                stats.participants_left += 1
                return
            if not text:
                page = await _request(client, stats, page_kind, "GET", session, hard_deadline)
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
                if images:
                    await fetch_images(client, stats, text, cache, hard_deadline)
                data, expected = _answer(kind_match.group(1) if kind_match else "", text, token, position)
                if think_s:
                    await asyncio.sleep(random.uniform(0, 2 * think_s))
                r = await _request(client, stats, "answer", "POST", url, hard_deadline, data=data, headers=csrf())
                # 200: stored, and the response is the next step's page; 302: nothing stored by this
                # request (a resent answer), the session page says where the participant is.
                if r.status_code == 200:
                    stats.acked.append({"token": token, "position": position, **expected})
                    stats.acked_at.append(time.perf_counter())
                    text = r.text
                    continue
            elif (start := _START.search(text)) is not None:
                r = await _request(client, stats, "start", "POST", start.group(1), hard_deadline, headers=csrf())
                page_kind = "page"
            else:
                break  # the completion (or screen-out) page: no form left
            if r.status_code != 302:
                raise ParticipantFailed(f"POST: HTTP {r.status_code}: {r.text[:200]}")
            text = ""
    stats.participants_finished += 1


async def run_clients(base: str, slug: str, *, participants: int, duration: float,
                      max_participants: int | None = None, think_s: float = 0.0, ramp_s: float = 0.0,
                      stats: Stats | None = None, images: bool = True) -> Stats:
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
                await run_participant(base, slug, next(counter), stats, deadline, think_s=think_s, images=images)
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
        "image_latency": {k: round(v, 1) for k, v in _percentiles(stats.latencies.get("image", [])).items()},
        "arrival_latency": {k: round(v, 1) for k, v in _percentiles(
            [v for kind in ARRIVAL_KINDS for v in stats.latencies.get(kind, [])]).items()},
        "other_latency": {kind: {k: round(v, 1) for k, v in _percentiles(values).items()}
                          for kind, values in sorted(stats.latencies.items())
                          if kind not in ("answer", "page", "image")},
        "image_requests_per_answer": round(len(stats.latencies.get("image", [])) / max(len(stats.acked), 1), 2),
        "image_mb": round(stats.image_bytes / 1e6, 1),
        "all_latency": {k: round(v, 1) for k, v in _percentiles(every).items()},
        "statuses": dict(sorted(stats.statuses.items())),
        "retries": stats.retries,
        "connection_errors": stats.connection_errors,
        "server_errors": stats.server_errors,
        "retry_pages": stats.retry_pages,
        "retry_pages_with_message": stats.retry_pages_with_message,
        "failures": sorted(set(getattr(stats, "failures", [])))[:10],
    }


def digest(result: dict) -> str:
    """The figures of a run in a few lines (the JSON has the rest)."""
    setup, load, audit = result["setup"], result["load"], result["audit"]
    cpu, in_process = load["cpu_s"], result["queries_per_request"]
    steady = load.get("steady_state")
    before, after = setup["loadavg_before_after"]
    lines = [
        f"{setup['participants']} participants, think {setup['think_s']:g} s, {setup['duration_s']:g} s of load "
        f"(arrivals over {setup['ramp_s']:g} s), workers {setup['workers']} x threads {setup['threads']}"
        f"{', nginx' if setup['nginx'] else ''}; started {setup['started_utc']} UTC, load average "
        f"{before[0] if before else '?'} -> {after[0] if after else '?'}",
        f"answers: {load['responses_acknowledged']} in {load['elapsed_s']} s = {load['responses_per_s']} answers/s "
        f"({load['requests']} requests, {load['participants_started']} participants started)",
        f"{'latency (ms)':<14}{'n':>7}{'p50':>9}{'p95':>9}{'p99':>9}",
    ]
    rows = [("answer", load["answer_latency"]), ("page", load["page_latency"]), ("image", load["image_latency"]),
            ("arrivals", load["arrival_latency"])]
    rows += [(f"  {kind}", load["other_latency"].get(kind, {"n": 0})) for kind in ARRIVAL_KINDS]
    for name, p in rows:
        if p.get("n"):
            lines.append(f"{name:<14}{p['n']:>7}{p['p50_ms']:>9.0f}{p['p95_ms']:>9.0f}{p['p99_ms']:>9.0f}")
    lines += [
        f"errors: {load['server_errors']} server, {load['connection_errors']} connection, {load['retries']} retries",
        "PostgreSQL backends waiting for a lock: in {share_with_a_waiter:.0%} of {samples} samples, at most "
        "{max_waiting} at once".format(**load["postgresql_lock_waits"]),
        f"CPU s: gunicorn {cpu.get('gunicorn', 0)}, PostgreSQL {cpu.get('postgresql', 0)}, nginx {cpu.get('nginx', 0)}"
        f" = server {cpu['server_total']}; load client {cpu['load_client']} "
        f"({load['load_client_cpu_ms_per_request']} ms per request)",
        f"server CPU ms per answered trial: {load['cpu_ms_per_answered_trial']} with arrivals, "
        f"{load['cpu_ms_per_answered_trial_without_arrivals']} without (in-process: "
        f"{in_process['per_trial']['cpu_ms']} per trial, {in_process['per_arrival']['cpu_ms']} per arrival)",
        *([f"steady state after the last arrival ({steady['window_s']} s, {steady['answers']} answers): "
           f"server CPU {steady['cpu_ms_per_answered_trial']} ms per answered trial"
           + (f" = {steady['cpu_ms_per_answered_trial'] / load['load_client_cpu_ms_per_request']:.1f} x the load "
              "client's CPU per request" if load["load_client_cpu_ms_per_request"] else "")] if steady else
          ["steady state: no arrival-free window of 10 s (participants kept arriving; seed longer sessions "
           "with --trials)"]),
        f"audit: {audit['acknowledged']} acknowledged, {audit['stored']} stored, {audit['lost']} lost, "
        f"{audit['duplicated']} duplicated, {audit['mismatched']} mismatched",
    ]
    return "\n".join(lines)


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


def _django(database_url: str, data_dir: Path, **extra: str) -> None:
    os.environ.update(server_env(database_url, data_dir, **extra))
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
    # Every content image gives one trial per question (three): enough of them for ``trials``.
    make_study(slug=slug, trials=trials, quota=10**6, contents=max(4, trials // 2), methods=3)
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


def gunicorn_settings(env: dict[str, str]) -> dict:
    """The values ``config/gunicorn.conf.py`` takes in the environment ``env``."""
    import runpy
    from unittest import mock

    with mock.patch.dict(os.environ, env, clear=True):
        return runpy.run_path(str(REPO / "config" / "gunicorn.conf.py"))


def start_gunicorn(env: dict[str, str], port: int, log_path: Path, *, workers: int | None = None) -> subprocess.Popen:
    """gunicorn with ``config/gunicorn.conf.py`` on ``127.0.0.1:port``; returns when it answers."""
    from urllib.request import urlopen

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
            with urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as health:
                if health.status == 200:
                    return proc
        except OSError:  # not listening yet (URLError), or an error status (HTTPError)
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


# --- CPU accounting from /proc ---------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu_s(pid: int, *, children: bool = False) -> float | None:
    """utime + stime of ``pid`` in seconds (+ its waited-for children's), None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    used = int(fields[11]) + int(fields[12])
    if children:
        used += int(fields[13]) + int(fields[14])
    return used / _TICKS


def _children(parents: set[int]) -> dict[int, list[int]]:
    """The child processes of each of ``parents`` (one pass over /proc)."""
    found: dict[int, list[int]] = {pid: [] for pid in parents}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as stat:
                    parent = int(stat.read().rsplit(b")", 1)[1].split(None, 2)[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent in found:
                found[parent].append(int(name))
    return found


class CpuMeter:
    """CPU seconds used by the server's processes during the run, from process accounting.

    Follows the gunicorn master and its workers, nginx and its workers, and the
    PostgreSQL backends connected to the load-test database (sampled every
    0.5 s, so a backend that exits loses at most its last half second). Only
    these processes count: other work on the machine does not. Each sample
    also counts the backends waiting for a lock (requests queued behind each
    other's row locks).
    """

    def __init__(self, roots: dict[str, int], pg_url: str, db_name: str) -> None:
        import threading

        self.roots, self.pg_url, self.db_name = roots, pg_url, db_name
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self.own_cpu_s = 0.0  # this meter's sampling, in the load generator's process
        self.lock_waiters: list[int] = []  # per sample: backends waiting for a lock
        #: (perf_counter, server CPU seconds used so far) per sample.
        self.series: list[tuple[float, float]] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _pids(self, conn) -> list[tuple[str, int, bool]]:
        pids = []
        children = _children(set(self.roots.values()))
        for name, root in self.roots.items():
            pids.append((name, root, True))
            pids.extend((name, child, False) for child in children[root])
        rows = conn.execute("SELECT pid, wait_event_type FROM pg_stat_activity WHERE datname = %s",
                            (self.db_name,)).fetchall()
        pids.extend(("postgresql", pid, False) for pid, _wait in rows)
        self.lock_waiters.append(sum(wait == "Lock" for _pid, wait in rows))
        return pids

    def sample(self, conn) -> None:
        for name, pid, is_root in self._pids(conn):
            used = _proc_cpu_s(pid, children=is_root)
            if used is not None:
                self.first.setdefault((name, pid), used)
                self.last[(name, pid)] = used
        self.series.append((time.perf_counter(),
                            sum(last - self.first[key] for key, last in self.last.items())))

    def between(self, begin: float, end: float) -> tuple[float, float, float] | None:
        """(first sample time, last sample time, server CPU s between them) for the samples within
        [begin, end]; None with fewer than two."""
        inside = [(t, used) for t, used in self.series if begin <= t <= end]
        if len(inside) < 2:
            return None
        return inside[0][0], inside[-1][0], inside[-1][1] - inside[0][1]

    def _loop(self) -> None:
        import psycopg

        started = time.thread_time()
        with psycopg.connect(_with_db(self.pg_url, "postgres"), autocommit=True) as conn:
            while not self._stop.is_set():
                self.sample(conn)
                self._stop.wait(0.5)
            self.sample(conn)
        self.own_cpu_s = time.thread_time() - started

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, float]:
        """CPU seconds per process kind since :meth:`start`."""
        self._stop.set()
        self._thread.join(timeout=10)
        used: dict[str, float] = {}
        for (name, pid), last in self.last.items():
            used[name] = used.get(name, 0.0) + last - self.first[(name, pid)]
        return {name: round(v, 2) for name, v in used.items()}

    def lock_waits(self) -> dict:
        """How often requests waited for each other's locks: share of samples with a waiter, most at once."""
        samples = max(len(self.lock_waiters), 1)
        return {"samples": len(self.lock_waiters),
                "share_with_a_waiter": round(sum(n > 0 for n in self.lock_waiters) / samples, 3),
                "max_waiting": max(self.lock_waiters, default=0)}


# --- nginx in front (X-Accel-Redirect for images) ---------------------------------------

NGINX_CONF = """
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    # Idle upstream connections are closed by nginx before gunicorn's keep-alive (5 s) closes
    # them, so a request is never sent on a connection gunicorn is closing (a reset: 502 on a POST).
    upstream stylestudy {{ server 127.0.0.1:{upstream}; keepalive 64; keepalive_timeout 4s; }}
    server {{
        listen 127.0.0.1:{port};
{snippet}
        location / {{
            proxy_pass http://stylestudy;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""

#: The production snippet (README, *Production*): files only after Django said yes
#: (X-Accel-Redirect), or by a link whose signature nginx checks itself (secure_link).
NGINX_MEDIA_SNIPPET = """
        location /_protected_media/ {{
            internal;
            alias {media}/;
        }}
        location ~ "^/m/(?<link_expires>[0-9]+)/(?<link_sig>[A-Za-z0-9_-]+)/(?<link_file>[0-9a-f]{{32}}[.a-z]*)$" {{
            secure_link $link_sig,$link_expires;
            secure_link_md5 "$link_expires/$link_file {secret}";
            if ($secure_link = "") {{ return 404; }}
            if ($secure_link = "0") {{ return 404; }}
            alias {media}/_published/$link_file;
            add_header Cache-Control "private, max-age={max_age}, immutable";
        }}
"""


def start_nginx(work: Path, port: int, upstream: int, media: Path, *, secret: str, max_age: int) -> subprocess.Popen:
    import shutil

    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    # nginx's workers run unprivileged: they must be able to read the media folder.
    os.chmod(work, 0o755)
    conf = work / "nginx.conf"
    snippet = NGINX_MEDIA_SNIPPET.format(media=media, secret=secret, max_age=max_age)
    conf.write_text(NGINX_CONF.format(work=work, port=port, upstream=upstream, snippet=snippet))
    proc = subprocess.Popen([exe, "-c", str(conf), "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                            stderr=open(work / "nginx-stderr.log", "ab"), start_new_session=True)
    time.sleep(0.5)
    if proc.poll() is not None:
        raise RuntimeError(f"nginx exited ({proc.returncode}); see {work}/nginx-stderr.log")
    return proc


# --- queries per request kind (Django test client on the load database) -----------------


def count_queries(database_url: str, data_dir: Path, slug: str = "load", participants: int = 3,
                  links: bool = False) -> dict:
    """Queries and CPU of each kind of participant request, participants one after another.

    Runs in-process against the load-test database with the production
    settings (the test client instead of HTTP), so the count is exact and the
    CPU is that of the request alone: this process's CPU time and that of its
    PostgreSQL backend (from /proc), without a load generator competing.
    The first participant warms up (template compilation, lazy imports) and
    is not counted.
    """
    extra = {"STYLESTUDY_IMAGE_LINK_SECRET": secrets.token_urlsafe(24)} if links else {}
    _django(database_url, data_dir, ALLOWED_HOSTS="testserver", **extra)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    counts: dict[str, list[int]] = {}
    cpu: dict[str, list[float]] = {}
    db_cpu: dict[str, list[float]] = {}
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def call(kind: str, method: str | None, url: str, **data):
        if method is None:  # a request Django never sees (nginx answers it)
            counts.setdefault(kind, []).append(0)
            cpu.setdefault(kind, []).append(0.0)
            db_cpu.setdefault(kind, []).append(0.0)
            return None
        with CaptureQueriesContext(connection) as ctx:
            db0 = _proc_cpu_s(backend) or 0.0
            started = time.process_time()
            response = getattr(client, method)(url, data or None)
            cpu.setdefault(kind, []).append(time.process_time() - started)
            db_cpu.setdefault(kind, []).append((_proc_cpu_s(backend) or 0.0) - db0)
        counts.setdefault(kind, []).append(len(ctx.captured_queries))
        return response

    for round_ in range(participants + 1):
        if round_ == 1:
            counts.clear()
            cpu.clear()
            db_cpu.clear()
        client.cookies.clear()  # a new participant; one client, so middleware loads once
        _one_participant(call, slug)
    result = {kind: {"requests": len(v), "queries_max": max(v), "queries_mean": round(sum(v) / len(v), 2),
                     "django_cpu_ms": round(1000 * sum(cpu[kind]) / len(v), 2),
                     "postgresql_cpu_ms": round(1000 * sum(db_cpu[kind]) / len(v), 2)}
              for kind, v in counts.items()}
    trials = len(counts.get("answer", [])) or 1
    # A trial's pages: the session page (the first trial; before answers rendered the next
    # page, every trial) and the answer, with the images Django sends.
    per_trial = sum(sum(cpu[k]) + sum(db_cpu[k]) for k in ("page", "answer", "image") if k in cpu) / trials
    per_arrival = sum(sum(cpu[k]) + sum(db_cpu[k]) for k in ARRIVAL_KINDS if k in cpu) / participants
    result["per_trial"] = {"trials": trials, "cpu_ms": round(1000 * per_trial, 2),
                           "django_requests": round(sum(len(counts.get(k, [])) for k in ("page", "answer", "image"))
                                                    / trials, 2),
                           "image_requests": round(len(counts.get("image", [])) / trials, 2),
                           "image_requests_nginx": round(len(counts.get("image_nginx", [])) / trials, 2)}
    result["per_arrival"] = {"participants": participants, "cpu_ms": round(1000 * per_arrival, 2)}
    return result


def _one_participant(call, slug: str) -> None:
    fetched: set[str] = set()  # the browser cache: every image URL is cacheable for its lifetime
    call("consent_page", "get", f"/s/{slug}/")
    session = call("consent", "post", f"/s/{slug}/", decision="accept")["Location"]
    text = ""
    page_kind = "entry_page"  # the background and instructions pages; "page" once started
    for _ in range(100):
        text = text or call(page_kind, "get", session).content.decode()
        if _BACKGROUND.search(text):
            call("background", "post", f"{session}background", cultural_background="western",
                 country_grew_up="Testland", languages=["en"], years_abroad="1", art_training="some",
                 age_band="25-34")
        elif (action := _ACTION.search(text)) is not None:
            for img, prefetch in _IMAGES.findall(text):
                url = (img or prefetch).replace("&amp;", "&")
                if url not in fetched:
                    fetched.add(url)
                    # nginx checks and sends /m/ links itself: no Django request to count.
                    if url.startswith("/m/"):
                        call("image_nginx", None, url)
                    else:
                        call("image", "get", url)
            kind = _KIND.search(text)
            data, _expected = _answer(kind.group(1) if kind else "", text, "count", 0)
            response = call("answer", "post", action.group(1), **data)
            text = response.content.decode() if response.status_code == 200 else ""
            continue
        elif (start := _START.search(text)) is not None:
            call("start", "post", start.group(1))
            page_kind = "page"
        else:
            break
        text = ""


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
    started_utc, load_before = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), _loadavg()
    database_url = _with_db(args.pg_url, args.db_name)
    work = Path(tempfile.mkdtemp(prefix="stylestudy-load-"))
    print(f"# database {args.db_name}, work folder {work}", file=sys.stderr)
    _recreate_database(args.pg_url, args.db_name)
    env = {k: v for k, v in os.environ.items()}
    _subprocess_json(["seed", "--database-url", database_url, "--data-dir", str(work),
                      "--trials", str(args.trials)], env)
    port = free_port()
    extra = {}
    if args.nginx:
        extra = {"STYLESTUDY_ACCEL_REDIRECT_PREFIX": "/_protected_media/", "STYLESTUDY_TRUSTED_PROXIES": "127.0.0.1",
                 "STYLESTUDY_IMAGE_LINK_SECRET": secrets.token_urlsafe(24),
                 "STYLESTUDY_IMAGE_URL_MAX_AGE": str(IMAGE_URL_MAX_AGE)}
    if args.threads:
        extra["GUNICORN_THREADS"] = str(args.threads)
    for setting in args.server_env:
        name, sep, value = setting.partition("=")
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise SystemExit(f"--server-env {setting!r}: NAME=value, NAME in capitals")
        extra[name] = value
    if args.workers:
        extra["GUNICORN_WORKERS"] = str(args.workers)
    environment = server_env(database_url, work, args.redis_url, **extra)
    gunicorn = gunicorn_settings(environment)
    server = start_gunicorn(environment, port, work / "gunicorn.log")
    front = None
    base_port = port
    if args.nginx:
        base_port = free_port()
        front = start_nginx(work, base_port, port, work / "media", secret=extra["STYLESTUDY_IMAGE_LINK_SECRET"],
                            max_age=IMAGE_URL_MAX_AGE // 2)
    roots = {"gunicorn": server.pid, **({"nginx": front.pid} if front else {})}
    meter = CpuMeter(roots, args.pg_url, args.db_name)
    profiler = None
    client_cpu0 = time.process_time()
    try:
        meter.start()
        if args.profile:
            profiler = _start_py_spy(server.pid, work, duration)
        stats = asyncio.run(run_clients(f"http://127.0.0.1:{base_port}", "load", participants=participants,
                                        duration=duration, max_participants=args.max_participants,
                                        think_s=args.think, ramp_s=min(args.ramp, duration / 2),
                                        images=not args.no_images))
    finally:
        cpu = meter.stop()
        if front is not None:
            stop_process(front)
        stop_process(server)
        if profiler is not None:
            profiler.wait(timeout=60)
    # The clients' event loop; the CPU meter's sampling thread shares the process and is counted apart.
    client_cpu = time.process_time() - client_cpu0 - meter.own_cpu_s
    summary = summarise(stats)
    answers = max(len(stats.acked), 1)
    requests = max(summary["requests"], 1)
    server_cpu = sum(cpu.values())
    summary["cpu_s"] = {**cpu, "server_total": round(server_cpu, 2), "load_client": round(client_cpu, 2),
                        "cpu_meter": round(meter.own_cpu_s, 2)}
    summary["cpu_ms_per_answered_trial"] = round(1000 * server_cpu / answers, 2)
    summary["cpu_ms_per_request"] = round(1000 * server_cpu / requests, 2)
    summary["load_client_cpu_ms_per_request"] = round(1000 * client_cpu / requests, 3)
    summary["postgresql_lock_waits"] = meter.lock_waits()
    acked_path = work / "acked.json"
    acked_path.write_text(json.dumps(stats.acked))
    audit = _subprocess_json(["verify", "--database-url", database_url, "--data-dir", str(work),
                              "--acked", str(acked_path)], env)
    queries = _subprocess_json(["queries", "--database-url", database_url, "--data-dir", str(work),
                                *(["--links"] if args.nginx else [])], env)
    # Without arrivals: the server CPU less every started participant's entry requests at their
    # in-process cost (under load they cost more, so this leans high).
    arrivals_cpu_s = stats.participants_started * queries["per_arrival"]["cpu_ms"] / 1000
    summary["cpu_ms_per_answered_trial_without_arrivals"] = round(1000 * max(server_cpu - arrivals_cpu_s, 0)
                                                                  / answers, 2)
    summary["steady_state"] = steady_state(meter, stats, deadline=stats.started + duration)
    result = {"setup": {"participants": participants, "duration_s": duration, "ramp_s": min(args.ramp, duration / 2),
                        "think_s": args.think, "trials": args.trials, "nginx": bool(args.nginx), "images": not args.no_images,
                        "workers": gunicorn["workers"], "threads": gunicorn["threads"],
                        "server_env": args.server_env, "cpus": os.cpu_count(),
                        "started_utc": started_utc, "loadavg_before_after": [load_before, _loadavg()]},
              "load": summary, "queries_per_request": queries, "audit": audit}
    print(json.dumps(result, indent=2))
    print(digest(result), file=sys.stderr)
    if not args.keep:
        _drop_database(args.pg_url, args.db_name)
    ok = audit["lost"] == 0 and audit["duplicated"] == 0 and audit["mismatched"] == 0 and summary["server_errors"] == 0
    print("PASS: every acknowledged response stored exactly once" if ok else "FAIL", file=sys.stderr)
    return 0 if ok else 1


def steady_state(meter: CpuMeter, stats: Stats, *, deadline: float, settle_s: float = 1.0,
                 min_window_s: float = 10.0) -> dict | None:
    """Server CPU per answered trial from process accounting alone, in the window after the last
    arrival request and before the clients' deadline: every request then is a trial's (its page,
    images and answer), so nothing is estimated or subtracted. None when the window is shorter
    than ``min_window_s`` (participants kept arriving: seed longer sessions with ``--trials``)."""
    window = meter.between(stats.last_arrival_at + settle_s, deadline - settle_s)
    if window is None or window[1] - window[0] < min_window_s:
        return None
    begin, end, cpu_s = window
    answers = sum(begin < t <= end for t in stats.acked_at)
    if not answers:
        return None
    return {"window_s": round(end - begin, 1), "answers": answers, "answers_per_s": round(answers / (end - begin), 1),
            "server_cpu_s": round(cpu_s, 2), "cpu_ms_per_answered_trial": round(1000 * cpu_s / answers, 2)}


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
        p.add_argument("--trials", type=int, default=6,
                       help="rated trials per participant (e.g. 40: nobody finishes in a minute, so the run has "
                            "a steady state without arrivals)")
        p.add_argument("--pg-url", default=os.environ.get("LOAD_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
        p.add_argument("--db-name", default="stylestudy_load")
        p.add_argument("--redis-url", default=os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/9"))
        p.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: the config's)")
        p.add_argument("--profile", action="store_true", help="record a py-spy profile of the server")
        p.add_argument("--keep", action="store_true", help="keep the database afterwards")
        p.add_argument("--threads", type=int, default=None, help="gunicorn threads per worker (default: the config's)")
        p.add_argument("--nginx", action="store_true", help="put nginx (X-Accel-Redirect for images) in front")
        p.add_argument("--no-images", action="store_true", help="do not fetch the trial images")
        p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                       help="an environment setting of the server (e.g. DATABASE_POOL=0); repeatable")
    s = sub.add_parser("seed")
    s.add_argument("--database-url", required=True)
    s.add_argument("--data-dir", type=Path, required=True)
    s.add_argument("--trials", type=int, default=6, help="rated trials per participant")
    v = sub.add_parser("verify")
    v.add_argument("--database-url", required=True)
    v.add_argument("--data-dir", type=Path, required=True)
    v.add_argument("--acked", type=Path, required=True)
    q = sub.add_parser("queries")
    q.add_argument("--database-url", required=True)
    q.add_argument("--data-dir", type=Path, required=True)
    q.add_argument("--links", action="store_true", help="images as nginx-verified links (as behind --nginx)")
    args = parser.parse_args(argv)
    if args.command == "queries":
        print(json.dumps(count_queries(args.database_url, args.data_dir, links=args.links)))
        return 0
    if args.command == "seed":
        print(json.dumps({"slug": seed(args.database_url, args.data_dir, trials=args.trials)}))
        return 0
    if args.command == "verify":
        print(json.dumps(verify(args.database_url, args.data_dir, json.loads(args.acked.read_text()))))
        return 0
    return command_run(args)


if __name__ == "__main__":
    sys.exit(main())
