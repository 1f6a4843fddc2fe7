"""What every worker needs: its device, the code version, OOM handling, stimulus reads."""

from __future__ import annotations

import functools
import gc
import os
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from django.conf import settings


@functools.cache
def code_version() -> str:
    """``stylestudy <version>+g<commit>`` (the commit when run from a git checkout)."""
    try:
        base = version("stylestudy")
    except PackageNotFoundError:
        base = "0+unknown"
    repo = Path(__file__).resolve().parent.parent.parent
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


def free_accelerator_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def read_file(field) -> bytes:
    """The bytes of a stored image (content, style or candidate), through the storage API."""
    with field.storage.open(field.name, "rb") as fh:
        return fh.read()
