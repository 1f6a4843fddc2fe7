"""Fetch registered weight files from their official URL or a mirror.

A mirror is a local folder or an HTTP(S) base URL holding files under their
registered file names, so an air-gapped lab can serve them itself. Downloads
are written to a temporary file beside the target, hashed while written, and
moved into place only when the hash matches: a failed or corrupt download
leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .registry import (
    ChecksumMismatchError,
    WeightSpec,
    get_spec,
    sha256_file,
    user_cache_dir,
)

_BLOCK = 1 << 20

ProgressFn = Callable[[str, int, int | None], None]


def _stderr_progress(name: str, done: int, total: int | None) -> None:
    if total:
        sys.stderr.write(f"\r{name}: {done / 1e6:7.1f} / {total / 1e6:.1f} MB ({100 * done / total:5.1f}%)")
    else:
        sys.stderr.write(f"\r{name}: {done / 1e6:7.1f} MB")
    sys.stderr.flush()


def _open_source(spec: WeightSpec, mirror: str | None) -> tuple[BinaryIO, int | None, str]:
    if mirror is None:
        if not spec.url:
            raise ValueError(
                f"{spec.name} has no public download URL; pass --mirror DIR_OR_URL "
                "pointing at a folder or server that holds "
                f"{spec.filename!r}"
            )
        location = spec.url
    elif "://" in mirror:
        location = mirror.rstrip("/") + "/" + spec.filename
    else:
        path = Path(mirror).expanduser() / spec.filename
        if not path.is_file():
            raise FileNotFoundError(f"mirror folder {mirror} has no file {spec.filename!r}")
        return open(path, "rb"), path.stat().st_size, str(path)
    if not location.startswith(("http://", "https://", "file://")):
        raise ValueError(f"unsupported URL scheme in {location!r}")
    try:
        response = urllib.request.urlopen(location, timeout=60)  # noqa: S310 (scheme checked)
    except urllib.error.HTTPError as exc:
        raise OSError(f"cannot download {spec.name} from {location}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OSError(
            f"cannot download {spec.name} from {location}: {reason}. Without internet, pass "
            "--mirror DIR_OR_URL with a folder or server that holds the file"
        ) from exc
    length = response.headers.get("Content-Length")
    return response, int(length) if length else None, location


def _read(source: BinaryIO, location: str, name: str) -> bytes:
    try:
        return source.read(_BLOCK)
    except (OSError, http.client.HTTPException) as exc:
        # A connection dropped mid-transfer raises IncompleteRead or a socket error.
        raise OSError(f"download of {name} from {location} failed: {exc}") from exc


def fetch(
    name: str,
    *,
    mirror: str | None = None,
    dest: str | os.PathLike | None = None,
    progress: ProgressFn | None = _stderr_progress,
    force: bool = False,
) -> Path:
    """Download or copy the weight file ``name`` into ``dest`` and verify it.

    Args:
        name: registry name.
        mirror: folder or base URL to take the file from instead of the
            official URL.
        dest: target folder (default: the user cache, which :func:`resolve`
            searches).
        progress: called as ``progress(name, bytes_done, bytes_total)``.
        force: download even if a verified copy is already there.

    Returns:
        The path of the verified file.

    Raises:
        ChecksumMismatchError: the downloaded bytes do not match the registry;
            nothing is written.
        ValueError, FileNotFoundError, OSError: no source, or the transfer failed.
    """
    spec = get_spec(name)
    folder = Path(dest).expanduser() if dest is not None else user_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.filename
    if target.is_file() and not force and spec.sha256 is not None:
        if sha256_file(target) == spec.sha256:
            return target
    source, total, location = _open_source(spec, mirror)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=folder)
    try:
        with source, os.fdopen(fd, "wb") as out:
            done = 0
            while block := _read(source, location, spec.name):
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress:
                    progress(spec.name, done, total)
            out.flush()
            os.fsync(out.fileno())
        if progress:
            sys.stderr.write("\n")
        if total is not None and done != total:
            raise OSError(f"incomplete download of {location}: {done} of {total} bytes")
        got = digest.hexdigest()
        if spec.sha256 is not None and got != spec.sha256:
            raise ChecksumMismatchError(
                f"download of {spec.name} from {location} has SHA-256 {got}, "
                f"expected {spec.sha256}; nothing was saved"
            )
        if spec.sha256 is None and spec.sha256_prefix and not got.startswith(spec.sha256_prefix):
            raise ChecksumMismatchError(
                f"download of {spec.name} from {location} has SHA-256 {got}, which does "
                f"not start with {spec.sha256_prefix}; nothing was saved"
            )
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


__all__ = ["fetch"]
