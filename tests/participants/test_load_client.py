"""The load test's HTTP client (bench/load_test.py): what it must do like a browser, against a scripted server."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_test():
    spec = importlib.util.spec_from_file_location("stylestudy_load_test", REPO / "bench" / "load_test.py")
    if spec.name not in sys.modules:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses need the module registered
        spec.loader.exec_module(module)
    return sys.modules[spec.name]


load = _load_test()


async def _serve(replies: list[bytes], seen: list[tuple[int, bytes]]):
    """A server that answers the n-th request with ``replies[n]`` (b"" = no answer, b"close" = close at once);
    it closes the connection after an HTTP/1.0 or "Connection: close" reply."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number = connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                seen.append((number, head + body))
                reply = replies[len(seen) - 1]
                if reply == b"":
                    await asyncio.sleep(60)
                if reply == b"close" or b"Connection: close" in reply or reply.startswith(b"HTTP/1.0"):
                    writer.write(b"" if reply == b"close" else reply)
                    await writer.drain()
                    writer.close()
                    return
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def _run(coro):
    # In a thread of its own: an earlier test's browser driver may hold a running event loop in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(coro, 20)).result()


def test_cookies_bodies_and_keep_alive():
    """Cookies are kept and sent back (and dropped when the server expires them); chunked, sized and
    until-close bodies are read whole; one connection serves requests in turn until the server closes it."""
    replies = [
        b"HTTP/1.1 200 OK\r\nSet-Cookie: csrftoken=abc; Path=/; SameSite=Lax\r\nSet-Cookie: lang=ja; Path=/\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=1\r\n, world\r\n0\r\n\r\n",
        b"HTTP/1.1 302 Found\r\nLocation: /p/t/\r\nSet-Cookie: lang=; Max-Age=0; Path=/\r\n"
        b"Content-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbye",
        b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
    ]
    seen: list[tuple[int, bytes]] = []

    async def scenario():
        server, base = await _serve(replies, seen)
        async with server, load.Browser(base) as browser:
            first = await browser.request("GET", "/s/x/", params={"PROLIFIC_PID": "a b"})
            second = await browser.request("POST", "/s/x/", data={"decision": "accept", "languages": ["en", "ja"]},
                                           headers={"X-CSRFToken": browser.cookies["csrftoken"]})
            third = await browser.request("GET", "/p/t/")
            fourth = await browser.request("GET", "/p/t/")
            return first, second, third, fourth, dict(browser.cookies)

    first, second, third, fourth, cookies = _run(scenario())
    assert (first.status_code, first.content) == (200, b"hello, world")
    assert (second.status_code, second.headers["location"], second.content) == (302, "/p/t/", b"")
    assert (third.text, fourth.text) == ("bye", "until the end")
    assert cookies == {"csrftoken": "abc"}
    requests = [raw for _, raw in seen]
    assert requests[0].startswith(b"GET /s/x/?PROLIFIC_PID=a+b HTTP/1.1\r\n")
    assert b"\r\nCookie: csrftoken=abc; lang=ja\r\n" in requests[1] and b"X-CSRFToken: abc" in requests[1]
    assert requests[1].endswith(b"\r\n\r\ndecision=accept&languages=en&languages=ja")
    assert b"Cookie: csrftoken=abc\r\n" in requests[2]
    # Keep-alive until the server's "Connection: close": then a new connection.
    assert [number for number, _ in seen] == [1, 1, 1, 2]


def test_a_closed_idle_connection_is_replaced_and_a_silent_server_times_out():
    replies = [b"close", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b""]
    seen: list[tuple[int, bytes]] = []

    async def scenario():
        server, base = await _serve([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", *replies], seen)
        async with server, load.Browser(base, timeout=0.5) as browser:
            await browser.request("GET", "/a")
            # The server closes the kept connection without answering: sent again on a new one.
            again = await browser.request("GET", "/b")
            with pytest.raises(ConnectionError):
                await browser.request("GET", "/c")
            return again

    again = _run(scenario())
    assert again.text == "ok"
    assert [(number, raw.split(b" ")[1]) for number, raw in seen] == [(1, b"/a"), (1, b"/b"), (2, b"/b"), (2, b"/c")]


def test_retry_policy_waits_out_503_and_counts_it():
    """A 503 with Retry-After and the retry message is retried; a 500 ends the participant."""
    page = b"Please try again in a moment."
    replies = [
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: %d\r\n\r\n%s" % (len(page), page),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
    ]
    stats = load.Stats()

    async def scenario():
        server, base = await _serve(replies, [])
        async with server, load.Browser(base) as browser:
            deadline = time.monotonic() + 30
            ok = await load._request(browser, stats, "page", "GET", "/p/t/", deadline)
            with pytest.raises(load.ParticipantFailed, match="HTTP 500"):
                await load._request(browser, stats, "answer", "POST", "/p/t/trial/1", deadline, data={"value": "1"})
            return ok

    assert _run(scenario()).text == "ok"
    assert (stats.retries, stats.retry_pages, stats.retry_pages_with_message, stats.server_errors) == (1, 1, 1, 1)
    assert stats.statuses == {503: 1, 200: 1, 500: 1}
    assert [len(stats.latencies[k]) for k in ("page", "answer")] == [2, 1]


def test_digest_reports_latencies_per_kind_cpu_and_audit():
    stats = load.Stats(started=0.0, finished=10.0)
    for kind, seconds in [("answer", 0.02), ("answer", 0.04), ("image", 0.001), ("consent", 0.03),
                          ("background", 0.05)]:
        stats.record(kind, seconds, 200)
    stats.acked = [{"token": "t", "position": 1, "value": 3}, {"token": "t", "position": 2, "value": 1}]
    summary = load.summarise(stats)
    assert summary["arrival_latency"]["n"] == 2 and summary["arrival_latency"]["max_ms"] == 50.0
    summary.update(cpu_s={"gunicorn": 1.5, "postgresql": 0.5, "server_total": 2.0, "load_client": 0.1},
                   load_client_cpu_ms_per_request=20.0, cpu_ms_per_answered_trial=1000.0,
                   cpu_ms_per_answered_trial_without_arrivals=900.0,
                   postgresql_lock_waits={"samples": 20, "share_with_a_waiter": 0.05, "max_waiting": 2},
                   steady_state={"window_s": 4.0, "answers": 2, "cpu_ms_per_answered_trial": 70.0})
    result = {"setup": {"participants": 2, "think_s": 3.0, "duration_s": 10.0, "ramp_s": 5.0, "workers": 2,
                        "threads": 8, "nginx": True, "started_utc": "2026-11-30 07:00:00",
                        "loadavg_before_after": [[0.5, 0.4, 0.3], [1.5, 0.6, 0.4]]},
              "load": summary, "queries_per_request": {"per_trial": {"cpu_ms": 9.5}, "per_arrival": {"cpu_ms": 30.0}},
              "audit": {"acknowledged": 2, "stored": 2, "lost": 0, "duplicated": 0, "mismatched": 0}}
    text = load.digest(result)
    assert "workers 2 x threads 8, nginx" in text and "load average 0.5 -> 1.5" in text
    assert "answers: 2 in 10.0 s = 0.2 answers/s (5 requests" in text
    answer = next(line for line in text.splitlines() if line.startswith("answer "))
    assert answer.split() == ["answer", "2", "30", "39", "40"]
    assert next(line for line in text.splitlines() if line.startswith("arrivals")).split()[1] == "2"
    assert "  background        1       50       50       50" in text
    assert "in 5% of 20 samples, at most 2 at once" in text
    assert "load client 0.1 (20.0 ms per request)" in text
    assert "1000.0 with arrivals, 900.0 without (in-process: 9.5 per trial, 30.0 per arrival)" in text
    assert ("steady state after the last arrival (4.0 s, 2 answers): server CPU 70.0 ms per answered trial "
            "= 3.5 x the load client's CPU per request") in text
    assert "audit: 2 acknowledged, 2 stored, 0 lost, 0 duplicated, 0 mismatched" in text


def test_children_of_several_processes_in_one_pass():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        found = load._children({os.getpid(), child.pid})
        assert child.pid in found[os.getpid()] and found[child.pid] == []
    finally:
        child.kill()
        child.wait()


def test_the_report_names_the_workers_and_threads_the_config_takes():
    configured = load.gunicorn_settings({"GUNICORN_WORKERS": "3", "GUNICORN_THREADS": "6"})
    assert (configured["workers"], configured["threads"]) == (3, 6)
    default = load.gunicorn_settings({})
    assert (default["workers"], default["threads"]) == (max(2, os.cpu_count()), 4)


def test_steady_state_counts_cpu_and_answers_after_the_last_arrival_only():
    """The window opens after the last arrival request (plus the settling second) and closes a
    second before the deadline; CPU is the samples' difference, answers those acknowledged in it."""
    meter = load.CpuMeter({}, "postgres://unused", "unused")
    meter.series = [(float(t), 0.1 * t * t) for t in range(31)]  # CPU used so far at each second
    stats = load.Stats()
    stats.last_arrival_at = 4.0
    stats.acked_at = [3.0, 5.5, 6.0, 10.0, 28.9, 29.5]
    steady = load.steady_state(meter, stats, deadline=30.0)
    # Samples 5..29: CPU 0.1 * (29² − 5²) = 81.6 s; answers at 5.5, 6, 10, 28.9 (not 3, not 29.5).
    assert steady == {"window_s": 24.0, "answers": 4, "answers_per_s": 0.2, "server_cpu_s": 81.6,
                      "cpu_ms_per_answered_trial": 20400.0}
    stats.last_arrival_at = 20.0  # arrivals until 20 s: a 9 s window is too short to count
    assert load.steady_state(meter, stats, deadline=30.0) is None
