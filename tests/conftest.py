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


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory) -> str:
    """moto's S3 server on a free loopback port for the whole session (see tests/s3.py)."""
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        require(False, f"moto[server] is not installed: {exc}")
    from tests.s3 import moto_server

    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        yield endpoint


@pytest.fixture
def s3_media(s3_endpoint, settings, monkeypatch, tmp_path):
    """Media on a fresh bucket of the loopback S3 endpoint, configured as in production.

    ``MEDIA_ROOT`` points at an empty folder that must stay empty; the
    ``MEDIA_S3_*`` variables are set for this process (and so for the worker
    processes it starts) and ``STORAGES`` is rebuilt from them.
    """
    from config.env import get_media_origins, get_media_storage
    from tests.s3 import new_bucket

    media = new_bucket(s3_endpoint)
    for name, value in media.env.items():
        monkeypatch.setenv(name, value)
    settings.MEDIA_ROOT = tmp_path / "local-media-unused"
    settings.STORAGES = {**settings.STORAGES, "default": get_media_storage()}
    # As config/settings.py derives them from the same variables at start-up.
    settings.MEDIA_ORIGINS = get_media_origins()
    if hasattr(settings, "STYLESTUDY_CSP"):
        csp = {**settings.STYLESTUDY_CSP}
        csp["img-src"] = [*csp["img-src"], *settings.MEDIA_ORIGINS]
        settings.STYLESTUDY_CSP = csp
    media.local_root = settings.MEDIA_ROOT
    return media
