"""Shared fixtures.

Fixtures that need an outside resource (pretrained weights, sample images,
PostgreSQL, Redis) skip when it is absent, except under CI (``CI`` set), where
a missing resource is a failure: CI must never pass by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def require(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (under CI) when ``condition`` is false."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    """The folder of real pretrained files; sets ``STYLECORE_WEIGHTS_DIR``."""
    path = Path(os.environ.get("STYLECORE_WEIGHTS_DIR") or SHARED / "weights")
    require((path / "SHA256SUMS").is_file() or any(path.glob("*.pth")), f"no weights in {path}")
    os.environ["STYLECORE_WEIGHTS_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The folder of sample content and style images."""
    path = Path(os.environ.get("STYLESTUDY_SAMPLES_DIR") or SHARED / "samples")
    require((path / "content").is_dir(), f"no sample images in {path}")
    return path


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Reference data with published results (metrics, statistics)."""
    path = SHARED / "reference"
    require(path.is_dir(), f"no reference data in {path}")
    return path
