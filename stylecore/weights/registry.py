"""The weight registry: one :class:`WeightSpec` per known file."""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._registry import Registry

WEIGHTS: Registry[WeightSpec] = Registry(
    "weights", "stylecore.weights", known=lambda names: "See: python -m stylecore weights list"
)
_REGISTRY = WEIGHTS.entries

# The verified-hash memo is keyed by (path, size, mtime) so a replaced file is
# hashed again; hashing a 45 MB file on every load would dominate small jobs.
_VERIFIED: dict[tuple[str, int, int], str] = {}


class MissingWeightsError(FileNotFoundError):
    """A registered weight file is not in any weights directory."""


class ChecksumMismatchError(ValueError):
    """A weight file's SHA-256 differs from the registered one."""


@dataclass(frozen=True)
class WeightSpec:
    """What the library knows about one weight file.

    Attributes:
        name: registry name, lowercase with hyphens (``wct-encoder-relu3_1``).
        filename: file name on disk and on mirrors.
        sha256: full hex digest, or ``None`` where the publisher gives none; then
            only the ``sha256_prefix`` (torchvision-style file names) is checked.
        size: bytes, where known.
        license: licence of the weights.
        source: where the file comes from (paper, repository, commit).
        url: official download URL, where one exists.
        family: model family the file belongs to (``vgg19-wct`` …).
        input_convention: the input the network expects; a wrong one gives
            plausible-looking garbage, so it is recorded with the weights.
        notes: caveats (e.g. "distilled approximation of VGG19").
    """

    name: str
    filename: str
    sha256: str | None
    size: int | None = None
    license: str = ""
    source: str = ""
    url: str | None = None
    family: str = ""
    input_convention: str = ""
    notes: str = ""
    sha256_prefix: str | None = field(default=None)

    @property
    def fetch_command(self) -> str:
        return f"python -m stylecore weights fetch {self.name}"


def register(spec: WeightSpec) -> WeightSpec:
    """Add ``spec`` to the registry; a clashing name raises (two files, one name)."""
    return WEIGHTS.register(spec.name, spec)


def list_specs(family: str | None = None) -> list[WeightSpec]:
    """All registered specs, sorted by name, optionally of one family."""
    return [s for s in WEIGHTS.values() if family is None or s.family == family]


def get_spec(name: str) -> WeightSpec:
    """The spec called ``name``; an unknown name raises with a suggestion."""
    return WEIGHTS.get(name)


def weights_dirs() -> list[Path]:
    """Folders searched for weight files, in order.

    ``STYLECORE_WEIGHTS_DIR`` (``os.pathsep``-separated) first, then the user
    cache (``$XDG_CACHE_HOME/stylecore/weights``, default ``~/.cache/…``), which
    is also where ``weights fetch`` writes by default.
    """
    dirs = [Path(p).expanduser() for p in os.environ.get("STYLECORE_WEIGHTS_DIR", "").split(os.pathsep) if p]
    return [*dirs, user_cache_dir()]


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stylecore" / "weights"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _find(spec: WeightSpec) -> Path | None:
    for folder in weights_dirs():
        candidate = folder / spec.filename
        if candidate.is_file():
            return candidate
    return None


def verify_file(spec: WeightSpec, path: Path) -> str:
    """Return the file's SHA-256 after checking it against ``spec``."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _VERIFIED.get(key) or sha256_file(path)
    if spec.sha256 is not None and digest != spec.sha256:
        raise ChecksumMismatchError(
            f"weight file {path} has SHA-256 {digest}, expected {spec.sha256} for "
            f"{spec.name!r}: the file is corrupt or a different version. Delete it "
            f"and fetch it again with: {spec.fetch_command}"
        )
    if spec.sha256 is None:
        if spec.sha256_prefix and not digest.startswith(spec.sha256_prefix):
            raise ChecksumMismatchError(
                f"weight file {path} has SHA-256 {digest}, which does not start with "
                f"{spec.sha256_prefix} as its publisher's file name promises"
            )
        if not spec.sha256_prefix:
            warnings.warn(
                f"{spec.name}: the publisher gives no checksum; {path} is used "
                f"unverified (SHA-256 {digest[:12]}… is recorded in provenance)",
                stacklevel=3,
            )
    _VERIFIED[key] = digest
    return digest


def resolve(name: str) -> Path:
    """Path of the verified weight file ``name``.

    Raises:
        ValueError: ``name`` is not registered.
        MissingWeightsError: the file is in no weights directory.
        ChecksumMismatchError: the file found is corrupt.
    """
    spec = get_spec(name)
    path = _find(spec)
    if path is None:
        searched = ", ".join(str(d) for d in weights_dirs())
        raise MissingWeightsError(
            f"weight file {spec.filename!r} ({spec.name}) not found in: {searched}. "
            f"Fetch it with: {spec.fetch_command}"
            + ("" if spec.url else " --mirror DIR_OR_URL (no public URL is registered)")
            + ", or set STYLECORE_WEIGHTS_DIR to a folder that holds it."
        )
    verify_file(spec, path)
    return path


def file_sha256(name: str) -> str:
    """SHA-256 of the verified file ``name`` (for provenance records)."""
    path = resolve(name)
    st = path.stat()
    return _VERIFIED[(str(path.resolve()), st.st_size, st.st_mtime_ns)]


def load_state_dict(name: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load the verified PyTorch file ``name`` with ``weights_only=True``."""
    path = resolve(name)
    return torch.load(path, map_location=map_location, weights_only=True)
