"""Generate claimed candidates: one batched ``stylize_grid`` call per method config and seed.

A generation task's candidates share method configuration and seed (the
lifecycle batches them so), so the whole batch is one grid call; on an
out-of-memory error the batch is halved and tried again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from ..lifecycle import jobs
from ..lifecycle.candidates import (
    candidate_heartbeat,
    claim_candidates,
    fail_candidates,
    release_candidates,
    store_result,
    update_studies_of,
)
from ..lifecycle.training import method_provenance
from ..models import Candidate, MethodConfig, Study
from ..models.study import candidate_upload_to
from ..storage import read_stimulus
from .runtime import (
    code_version,
    free_accelerator_memory,
    is_out_of_memory,
    worker_device,
)

logger = logging.getLogger(__name__)


class CheckpointError(Exception):
    """A trained generator's stored checkpoint is missing or differs from the one configured."""


def local_checkpoint(mc: MethodConfig) -> str:
    """A local copy of ``mc``'s stored generator checkpoint, verified against its SHA-256.

    The stored file is read on every batch (a cached copy would hide a file
    changed or deleted in storage) and kept under its hash, so the generator
    cache of stylecore is keyed by content.

    Raises:
        CheckpointError: the file is not in storage or its SHA-256 differs.
    """
    name, expected = mc.params.get("checkpoint", ""), mc.params.get("checkpoint_sha256") or ""
    run = f"training run #{mc.training_run_id}"
    try:
        with default_storage.open(name, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise CheckpointError(f"the generator checkpoint {name} of {run} is missing from storage") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise CheckpointError(
            f"the generator checkpoint {name} of {run} has SHA-256 {actual}, expected {expected}: "
            "the stored file changed since it was made a method; use the run as a method again"
        )
    folder = Path(settings.DATA_DIR) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{actual}.pt"
    if not path.is_file():
        partial = folder / f"{actual}.{os.getpid()}.part"
        partial.write_bytes(data)
        os.replace(partial, path)
    return str(path)


class _Generation:
    """One task's claimed candidates, generated as one grid."""

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

    def _record_failure(self, rows: Sequence[Candidate], message: str) -> None:
        logger.warning("failing %d candidate(s): %s", len(rows), message)
        self.failed.extend(fail_candidates([r.pk for r in rows], self.token, message))

    def run(self, rows: list[Candidate]) -> None:
        """Generate ``rows`` (one method config and seed) with the config's stored, validated parameters."""
        from stylecore.methods import get_method, stylize_grid

        mc, study = rows[0].method_config, rows[0].study
        contents = {r.content_id: r.content for r in rows}
        styles = {r.style_id: r.style for r in rows}
        column = {pk: j for j, pk in enumerate(styles)}
        line = {pk: i for i, pk in enumerate(contents)}
        try:
            content_images = [self._tensor("content", c, study.image_size) for c in contents.values()]
            style_images = [self._tensor("style", s, study.image_size) for s in styles.values()]
        except (OSError, ValueError) as exc:
            self._record_failure(rows, f"cannot read an input image: {exc}")
            return
        params, trained = mc.params, None
        if mc.training_run_id:
            try:
                params = {**mc.params, "checkpoint": local_checkpoint(mc)}
            except CheckpointError as exc:
                self._record_failure(rows, f"{mc.method} ({mc.label}): {exc}")
                return
            trained = method_provenance(mc)
        start = time.perf_counter()
        try:
            result = stylize_grid(
                mc.method, content_images, style_images, params=params, family=mc.family or None,
                seed=rows[0].seed, device=self.device,
            )
        except jobs.TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - any method error fails these candidates, not the worker
            if is_out_of_memory(exc):
                free_accelerator_memory()
                if len(rows) > 1:
                    half = len(rows) // 2
                    logger.warning("out of memory with %d candidates; retrying as %d + %d", len(rows), half,
                                   len(rows) - half)
                    self.run(rows[:half])
                    self.run(rows[half:])
                    return
                self._record_failure(
                    rows,
                    f"out of memory on {self.device} even for a single candidate at {study.image_size} px "
                    f"({type(exc).__name__}: {exc}); lower the study's image size or use a device with more memory",
                )
                return
            self._record_failure(rows, f"{mc.method} ({mc.label}) failed: {type(exc).__name__}: {exc}")
            return
        seconds = (time.perf_counter() - start) / len(rows)
        needs_style = get_method(mc.method).needs_style
        for row in rows:
            # A method without a style gives one image per content, shared by every style of the row.
            key = (line[row.content_id], column[row.style_id] if needs_style else 0)
            image = result.images.get(key)
            if image is None:
                self._record_failure([row], f"{mc.method} returned no image for content/style {key}")
                continue
            provenance = dict(result.provenance)
            if trained is not None:
                # The storage name, not this worker's local copy, identifies the generator.
                provenance["params"] = {**provenance.get("params", {}), "checkpoint": mc.params["checkpoint"]}
                provenance["training_run"] = trained
            self._store(row, image, provenance, seconds, len(rows), study)

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
        if store_result(row, self.token, image=name, provenance=provenance, seconds=seconds, host=self.host):
            self.done.append(row.pk)
        else:
            # Cancelled or taken over by another worker meanwhile: that result wins.
            default_storage.delete(name)


def run_generation(candidate_ids: Sequence[int], *, host: str | None = None, device: str | None = None) -> dict:
    """Generate the given candidates that are still queued; the rest are left alone.

    Returns:
        ``{"claimed": [...], "done": [...], "failed": [...]}`` (candidate ids).

    Raises:
        ValueError: the candidates do not share one method configuration and seed.
        One of :data:`~studies.lifecycle.jobs.TRANSIENT_ERRORS`: after putting
            the claimed candidates back in the queue, so a retry of the task
            finds them again.
    """
    host = host or socket.gethostname()
    token = jobs.new_token()
    claimed = claim_candidates(candidate_ids, token, host)
    if not claimed:
        return {"claimed": [], "done": [], "failed": []}
    work = _Generation(token, host, device or worker_device())
    try:
        with candidate_heartbeat(claimed, token):
            jobs.fault_delay()
            rows = list(
                jobs.held(Candidate, claimed, token)
                .select_related("study", "content", "style", "method_config__training_run")
                .order_by("style_id", "content_id")
            )
            if len({(r.method_config_id, r.seed) for r in rows}) > 1:
                raise ValueError("a generation batch must share one method configuration and seed")
            if rows:
                work.run(rows)
    except BaseException as exc:
        # Transient errors, the soft time limit, a warm shutdown: hand the rest back.
        try:
            release_candidates(claimed, token, f"interrupted ({type(exc).__name__}: {exc}); re-queued")
        except jobs.TRANSIENT_ERRORS:
            logger.exception("could not release candidates %s; the stale sweep will", claimed)
        raise
    finally:
        update_studies_of(claimed)
    return {"claimed": claimed, "done": work.done, "failed": work.failed}
