"""Pretrained weights: a registry of known files, verified loading and fetching.

Nothing here downloads at load time. :func:`resolve` finds a registered file in
``STYLECORE_WEIGHTS_DIR`` (one or more folders separated by ``os.pathsep``) or
the user cache, checks its SHA-256 and returns the path; a missing or corrupt
file raises an error naming the file and the command that fetches it.
"""

from .fetch import fetch
from .registry import (
    ChecksumMismatchError,
    MissingWeightsError,
    WeightSpec,
    file_sha256,
    get_spec,
    list_specs,
    load_state_dict,
    register,
    resolve,
    sha256_file,
    weights_dirs,
)

__all__ = [
    "ChecksumMismatchError",
    "MissingWeightsError",
    "WeightSpec",
    "fetch",
    "file_sha256",
    "get_spec",
    "list_specs",
    "load_state_dict",
    "register",
    "resolve",
    "sha256_file",
    "weights_dirs",
]
