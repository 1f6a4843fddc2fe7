"""Fetching weight files from a mirror folder or a local HTTP server (loopback only)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from stylecore.weights import (
    ChecksumMismatchError,
    MissingWeightsError,
    fetch,
    get_spec,
    resolve,
)
from stylecore.weights.registry import _REGISTRY, WeightSpec, register

PAYLOAD = b"stylecore test weights " * 1000


@pytest.fixture
def spec(tmp_path, monkeypatch):
    """A registered test entry whose expected hash is that of PAYLOAD."""
    s = WeightSpec(name="test-fetch-file", filename="test_fetch_file.bin",
                   sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD))  # fmt: skip
    register(s)
    monkeypatch.setenv("STYLECORE_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield s
    _REGISTRY.pop(s.name, None)


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served."""
    root = tmp_path / "served"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args):  # keep test output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class TestFetch:
    def test_from_http_mirror(self, spec, server, tmp_path):
        root, url = server
        (root / spec.filename).write_bytes(PAYLOAD)
        seen = []
        dest = tmp_path / "dest"
        path = fetch(spec.name, mirror=url, dest=dest, progress=lambda n, d, t: seen.append((d, t)))
        assert path.read_bytes() == PAYLOAD
        assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
        assert _leftovers(dest) == [spec.filename]

    def test_corrupt_download_leaves_nothing(self, spec, server, tmp_path):
        root, url = server
        (root / spec.filename).write_bytes(PAYLOAD[:-1] + b"X")
        dest = tmp_path / "dest"
        with pytest.raises(ChecksumMismatchError, match="nothing was saved"):
            fetch(spec.name, mirror=url, dest=dest, progress=None)
        assert _leftovers(dest) == []

    def test_missing_on_server_names_the_url(self, spec, server, tmp_path):
        _, url = server
        with pytest.raises(OSError, match=f"{url}/{spec.filename}.*HTTP 404"):
            fetch(spec.name, mirror=url, dest=tmp_path / "dest", progress=None)
        assert _leftovers(tmp_path / "dest") == []

    def test_unreachable_server_is_a_clear_oserror(self, spec, tmp_path):
        with pytest.raises(OSError, match="cannot download test-fetch-file from http://127.0.0.1:9/"):
            fetch(spec.name, mirror="http://127.0.0.1:9", dest=tmp_path / "dest", progress=None)

    def test_from_folder_mirror_then_resolve(self, spec, tmp_path):
        mirror = tmp_path / "mirror"
        mirror.mkdir()
        (mirror / spec.filename).write_bytes(PAYLOAD)
        with pytest.raises(MissingWeightsError, match="weights fetch test-fetch-file"):
            resolve(spec.name)
        path = fetch(spec.name, mirror=str(mirror), progress=None)  # default: the user cache
        assert resolve(spec.name) == path

    def test_resolve_detects_corruption(self, spec, tmp_path):
        folder = tmp_path / "weights"
        folder.mkdir()
        (folder / spec.filename).write_bytes(b"wrong")
        with pytest.raises(ChecksumMismatchError, match=spec.filename):
            resolve(spec.name)

    def test_no_url_and_no_mirror(self, spec, tmp_path):
        with pytest.raises(ValueError, match="no public download URL"):
            fetch(spec.name, dest=tmp_path, progress=None)


def test_official_entries_have_urls():
    """Every file that is only downloadable with internet has an https URL."""
    for name in ["adain-vgg-normalised", "adain-decoder", "vgg19-torchvision", "wct-encoder-relu4_1",
                 "wct-decoder-relu4_1", "wct-encoder-relu5_1", "wct-decoder-relu5_1"]:  # fmt: skip
        spec = get_spec(name)
        assert spec.url and spec.url.startswith("https://"), name
        assert replace(spec).fetch_command.endswith(name)
