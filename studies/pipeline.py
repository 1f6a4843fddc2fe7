"""Worker-side generation and scoring of candidates (called by :mod:`studies.tasks`).

Exactly-once rules:

* A worker *claims* a queued candidate with one conditional ``UPDATE … WHERE
  status = 'queued'``, writing a fresh claim token. The database serialises
  such updates (PostgreSQL row locks, SQLite's single writer), so of two
  workers given the same candidate only one gets it.
* A result is stored with ``UPDATE … WHERE status = 'running' AND claim =
  token``: if the candidate was cancelled, or re-queued by the stale sweep and
  claimed by someone else, the late result is discarded with its file.
* While a batch runs, a heartbeat thread refreshes ``heartbeat_at``; the
  periodic sweep re-queues a running candidate whose heartbeat stopped (its
  worker died: ``kill -9``, OOM killer, lost machine).
"""

from __future__ import annotations

import functools
import io
import logging
import os
import socket
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, connection
from django.db.models import F, Q
from django.utils import timezone

from .models import Candidate, MetricValue, Study
from .models.study import candidate_upload_to
from .storage import read_stimulus

logger = logging.getLogger(__name__)

# Errors worth retrying the whole task for (the database or broker blinked).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
# A candidate whose worker died this many times is failed rather than re-queued
# again: it probably kills the worker (e.g. the kernel's OOM killer).
MAX_ATTEMPTS = 3


def heartbeat_seconds() -> float:
    return float(getattr(settings, "STYLESTUDY_HEARTBEAT_SECONDS", 10))


def stale_after_seconds() -> float:
    return float(getattr(settings, "STYLESTUDY_STALE_AFTER_SECONDS", 120))


def requeue_queued_after_seconds() -> float:
    return float(getattr(settings, "STYLESTUDY_REQUEUE_QUEUED_AFTER_SECONDS", 6 * 3600))


@functools.cache
def code_version() -> str:
    """``stylestudy <version>+g<commit>`` (the commit when run from a git checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        base = version("stylestudy")
    except PackageNotFoundError:
        base = "0+unknown"
    repo = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True,
            timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return base
    return f"{base}+g{sha}{'.dirty' if dirty else ''}"


def worker_device() -> str:
    """``STYLESTUDY_DEVICE`` if set, else the first GPU, else the CPU."""
    configured = getattr(settings, "STYLESTUDY_DEVICE", "") or os.environ.get("STYLESTUDY_DEVICE", "")
    if configured:
        return configured
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an accelerator (or allocator) out-of-memory error."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Heartbeat:
    """Calls ``beat()`` from a thread every heartbeat interval while a block runs.

    Used for claimed candidates and for training runs, so a slow batch or a
    slow training iteration never looks like a dead worker to the sweeps.
    """

    def __init__(self, beat: Callable[[], object], name: str) -> None:
        self.beat = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        interval = heartbeat_seconds()
        try:
            while not self._stop.wait(interval):
                try:
                    self.beat()
                except TRANSIENT_ERRORS as exc:  # the next beat may succeed
                    logger.warning("heartbeat failed: %s", exc)
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def candidate_heartbeat(ids: Sequence[int], token: str) -> Heartbeat:
    """Keeps the claimed candidates ``ids`` fresh for the stale sweep."""
    ids = list(ids)
    return Heartbeat(
        lambda: Candidate.objects.filter(pk__in=ids, claim=token, status=Candidate.Status.RUNNING).update(
            heartbeat_at=timezone.now()
        ),
        "candidate-heartbeat",
    )


def claim_candidates(candidate_ids: Iterable[int], token: str, host: str) -> list[int]:
    """Mark queued candidates as running under ``token``; returns the ids this call got."""
    now = timezone.now()
    claimed = []
    for pk in candidate_ids:
        got = Candidate.objects.filter(pk=pk, status=Candidate.Status.QUEUED).update(
            status=Candidate.Status.RUNNING, claim=token, worker=host[:200], started_at=now, heartbeat_at=now,
            finished_at=None, attempts=F("attempts") + 1, error="",
        )
        if got:
            claimed.append(pk)
    return claimed


def release_candidates(candidate_ids: Iterable[int], token: str, reason: str) -> int:
    """Put still-running candidates of this claim back in the queue (task will be retried)."""
    return Candidate.objects.filter(pk__in=list(candidate_ids), claim=token, status=Candidate.Status.RUNNING).update(
        status=Candidate.Status.QUEUED, claim="", error=reason[:2000], queued_at=timezone.now()
    )


def _fail(rows: Sequence[Candidate], token: str, message: str) -> int:
    logger.warning("failing %d candidate(s): %s", len(rows), message)
    return Candidate.objects.filter(
        pk__in=[r.pk for r in rows], claim=token, status=Candidate.Status.RUNNING
    ).update(status=Candidate.Status.FAILED, error=message[:4000], finished_at=timezone.now())


def _read(field) -> bytes:
    """A stored candidate image (read once; stimuli go through :func:`read_stimulus`)."""
    with field.storage.open(field.name, "rb") as fh:
        return fh.read()


class _Generation:
    """One task's claimed candidates, generated group by group."""

    def __init__(self, token: str, host: str, device: str) -> None:
        self.token, self.host, self.device = token, host, device
        self.done: list[int] = []
        self.failed: list[int] = []
        self._images: dict[tuple[str, int, int], Any] = {}

    def _tensor(self, kind: str, row, max_side: int):
        from stylecore.io import load_image

        key = (kind, row.pk, max_side)
        if key not in self._images:
            self._images[key] = load_image(read_stimulus(row), max_side=max_side)
        return self._images[key]

    def run_group(self, rows: list[Candidate]) -> None:
        mc, study = rows[0].method_config, rows[0].study
        try:
            from stylecore.methods import get_method

            spec = get_method(mc.method)
            params = spec.validate(mc.params)
        except (ImportError, ValueError) as exc:
            self._record_failure(rows, f"method {mc.method!r} of {mc.label!r} cannot run: {exc}")
            return
        self._run_pairs(rows, mc, study, params)

    def _record_failure(self, rows: Sequence[Candidate], message: str) -> None:
        if _fail(rows, self.token, message):
            self.failed.extend(r.pk for r in rows)

    def _run_pairs(self, rows: list[Candidate], mc, study: Study, params: dict) -> None:
        from stylecore.methods import stylize_grid

        content_ids = list(dict.fromkeys(r.content_id for r in rows))
        style_ids = list(dict.fromkeys(r.style_id for r in rows))
        by_content = {r.content_id: r.content for r in rows}
        by_style = {r.style_id: r.style for r in rows}
        try:
            contents = [self._tensor("content", by_content[c], study.image_size) for c in content_ids]
            styles = [self._tensor("style", by_style[s], study.image_size) for s in style_ids]
        except (OSError, ValueError) as exc:
            self._record_failure(rows, f"cannot read an input image: {exc}")
            return
        start = time.perf_counter()
        try:
            result = stylize_grid(
                mc.method, contents, styles, params=params, family=mc.family or None, seed=rows[0].seed,
                device=self.device,
            )
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - any method error fails these candidates, not the worker
            if is_out_of_memory(exc):
                _free_accelerator_memory()
                if len(rows) > 1:
                    half = len(rows) // 2
                    logger.warning("out of memory with %d candidates; retrying as %d + %d", len(rows), half,
                                   len(rows) - half)
                    self._run_pairs(rows[:half], mc, study, params)
                    self._run_pairs(rows[half:], mc, study, params)
                    return
                self._record_failure(
                    rows,
                    f"out of memory on {self.device} even for a single candidate at {study.image_size} px "
                    f"({type(exc).__name__}: {exc}); lower the study's image size or use a device with more memory",
                )
                return
            self._record_failure(rows, f"{mc.method} failed: {type(exc).__name__}: {exc}")
            return
        seconds = (time.perf_counter() - start) / len(rows)
        for row in rows:
            key = (content_ids.index(row.content_id), style_ids.index(row.style_id))
            image = result.images.get(key)
            if image is None:
                self._record_failure([row], f"{mc.method} returned no image for content/style {key}")
                continue
            self._store(row, image, dict(result.provenance), seconds, len(rows), study)

    def _store(self, row: Candidate, image, provenance: dict, seconds: float, batch: int, study: Study) -> None:
        from stylecore.io import tensor_to_pil

        buf = io.BytesIO()
        tensor_to_pil(image).save(buf, format="PNG")
        provenance.update(
            code_version=code_version(),
            worker=self.host,
            device=self.device,
            seconds=round(seconds, 4),
            batch_size=batch,
            claim=self.token,
            method_config={"id": row.method_config_id, "label": row.method_config.label},
            content_sha256=row.content.sha256,
            style_sha256=row.style.sha256,
            image_size=study.image_size,
        )
        name = default_storage.save(candidate_upload_to(row, f"{row.pk}-{self.token[:12]}.png"),
                                    ContentFile(buf.getvalue()))
        stored = Candidate.objects.filter(pk=row.pk, claim=self.token, status=Candidate.Status.RUNNING).update(
            status=Candidate.Status.DONE, image=name, provenance=provenance, seconds=seconds, worker=self.host[:200],
            finished_at=timezone.now(), error="",
        )
        if stored:
            self.done.append(row.pk)
        else:
            # Cancelled or taken over by another worker meanwhile: that result wins.
            default_storage.delete(name)


def run_generation(candidate_ids: Sequence[int], *, host: str | None = None, device: str | None = None) -> dict:
    """Generate the given candidates that are still queued; the rest are left alone.

    Returns:
        ``{"claimed": [...], "done": [...], "failed": [...]}`` (candidate ids).

    Raises:
        One of :data:`TRANSIENT_ERRORS`: after putting the claimed candidates
            back in the queue, so a retry of the task finds them again.
    """
    host = host or socket.gethostname()
    token = uuid.uuid4().hex
    claimed = claim_candidates(candidate_ids, token, host)
    if not claimed:
        return {"claimed": [], "done": [], "failed": []}
    work = _Generation(token, host, device or worker_device())
    try:
        with candidate_heartbeat(claimed, token):
            delay = float(getattr(settings, "STYLESTUDY_GENERATION_DELAY_SECONDS", 0) or 0)
            if delay:
                time.sleep(delay)  # fault-injection window (tests, demos of crash recovery)
            rows = list(
                Candidate.objects.filter(pk__in=claimed, claim=token)
                .select_related("study", "content", "style", "method_config")
                .order_by("method_config_id", "seed", "style_id", "content_id")
            )
            groups: dict[tuple[int, int], list[Candidate]] = defaultdict(list)
            for row in rows:
                groups[(row.method_config_id, row.seed)].append(row)
            for group in groups.values():
                work.run_group(group)
    except BaseException as exc:
        # Transient errors, the soft time limit, a warm shutdown: hand the rest back.
        try:
            release_candidates(claimed, token, f"interrupted ({type(exc).__name__}: {exc}); re-queued")
        except TRANSIENT_ERRORS:
            logger.exception("could not release candidates %s; the stale sweep will", claimed)
        raise
    finally:
        from .actions.generation import do_update_study_status

        for study_id in set(Candidate.objects.filter(pk__in=claimed).values_list("study_id", flat=True)):
            try:
                do_update_study_status(study_id)
            except TRANSIENT_ERRORS:
                logger.exception("could not update study %s status", study_id)
    return {"claimed": claimed, "done": work.done, "failed": work.failed}


def sweep_stale_candidates(
    *, stale_after: float | None = None, requeue_queued_after: float | None = None, max_attempts: int = MAX_ATTEMPTS
) -> dict[str, list[int]]:
    """Re-queue running candidates whose worker stopped sending heartbeats.

    Also re-sends tasks for candidates queued for longer than
    ``requeue_queued_after`` seconds (their message may have died with a
    worker on a broker without redelivery); duplicates are harmless since a
    task only claims queued candidates. A candidate whose worker died
    ``max_attempts`` times is failed with a message.

    Returns:
        ``{"requeued": [...], "resent": [...], "failed": [...]}`` (ids).
    """
    from .actions.generation import do_update_study_status, enqueue_candidates

    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_after if stale_after is not None else stale_after_seconds())
    stale = Candidate.objects.filter(status=Candidate.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    requeued, failed = [], []
    for pk, claim, worker, attempts in stale.values_list("pk", "claim", "worker", "attempts"):
        fields: dict[str, Any]
        if attempts >= max_attempts:
            fields = dict(status=Candidate.Status.FAILED, finished_at=now,
                          error=f"the worker died {attempts} times while generating this candidate "
                                f"(last on {worker}); not retried again")
        else:
            fields = dict(status=Candidate.Status.QUEUED, queued_at=now,
                          error=f"re-queued: worker {worker} stopped sending heartbeats")
        # Only if nobody touched it meanwhile (same claim, still running).
        if Candidate.objects.filter(pk=pk, claim=claim, status=Candidate.Status.RUNNING).update(claim="", **fields):
            (failed if attempts >= max_attempts else requeued).append(pk)
    old = now - timedelta(
        seconds=requeue_queued_after if requeue_queued_after is not None else requeue_queued_after_seconds()
    )
    resend = list(
        Candidate.objects.filter(status=Candidate.Status.QUEUED, queued_at__lt=old).values_list("pk", flat=True)
    )
    Candidate.objects.filter(pk__in=resend).update(queued_at=now)
    ids = requeued + resend
    if ids:
        from django.db import transaction

        with transaction.atomic():
            enqueue_candidates(ids, score=True)
    for study_id in set(Candidate.objects.filter(pk__in=failed).values_list("study_id", flat=True)):
        do_update_study_status(study_id)
    if requeued or failed:
        logger.warning("stale sweep: re-queued %s, failed %s", requeued, failed)
    return {"requeued": requeued, "resent": resend, "failed": failed}


def default_metrics() -> list[str]:
    """``STYLESTUDY_METRICS`` if set, else every metric stylecore offers."""
    configured = getattr(settings, "STYLESTUDY_METRICS", None)
    if configured:
        return list(configured)
    from stylecore.metrics import available_metrics

    return list(available_metrics())


def run_scoring(candidate_ids: Sequence[int], metrics: Sequence[str] | None = None, *,
                device: str | None = None) -> dict[str, int]:
    """Compute metrics for generated candidates and store them (idempotent).

    A value already stored for the same metric and version is not computed
    again. A metric that cannot run (missing weights, wrong input) is stored
    with a null value and the reason.
    """
    import torch.nn.functional as F  # noqa: N812

    from stylecore.io import load_image
    from stylecore.metrics import compute, get_metric

    names = list(metrics) if metrics else default_metrics()
    rows = list(
        Candidate.objects.filter(pk__in=list(candidate_ids), status=Candidate.Status.DONE)
        .select_related("study", "content", "style")
        .order_by("pk")
    )
    if not rows or not names:
        return {"candidates": 0, "stored": 0}
    versions = {}
    for name in names:
        version = getattr(get_metric(name), "version", None)
        versions[name] = str(version) if version is not None else None
    have = set(
        MetricValue.objects.filter(candidate__in=rows, name__in=names).values_list("candidate_id", "name", "version")
    )
    todo = [
        n for n in names
        if versions[n] is None or any((r.pk, n, versions[n]) not in have for r in rows)
    ]
    if not todo:
        return {"candidates": len(rows), "stored": 0}
    images, contents, styles = [], [], []
    for row in rows:
        out = load_image(_read(row.image))
        content = load_image(read_stimulus(row.content))
        if content.shape[-2:] != out.shape[-2:]:
            content = F.interpolate(content, size=out.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
        images.append(out)
        contents.append(content.clamp(0, 1))
        styles.append(load_image(read_stimulus(row.style), max_side=row.study.image_size))
    stored = 0
    for name in todo:
        # One metric at a time, so a metric that cannot score these images
        # (e.g. too small for its pyramid) is recorded without sinking the rest.
        try:
            results = compute([name], images, contents, styles, device=device or worker_device())
        except TRANSIENT_ERRORS:
            raise
        except (ValueError, RuntimeError) as exc:
            if is_out_of_memory(exc):
                raise
            results = [
                {"index": k, "name": name, "version": versions[name] or "", "value": None,
                 "unavailable": f"error: {type(exc).__name__}: {exc}"}
                for k in range(len(rows))
            ]
        for item in results:
            row = rows[item["index"]]
            MetricValue.objects.update_or_create(
                candidate=row, name=item["name"], version=str(item.get("version") or ""),
                defaults={
                    "value": None if item.get("value") is None else float(item["value"]),
                    "unavailable_reason": (item.get("unavailable") or "")[:4000],
                    "computed_at": timezone.now(),
                },
            )
            stored += 1
    return {"candidates": len(rows), "stored": stored}
