"""Media on local disk, written all-or-nothing.

Django's ``FileSystemStorage`` writes straight into the final file, so a disk
that fills up mid-write leaves a truncated file behind that no row refers to.
Here each file is written to a hidden temporary name in the same folder and
hard-linked into place only when complete; whatever fails on the way (a full
disk, a read-only mount) removes the temporary file. Object stores (S3) are
all-or-nothing by themselves.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets

from django.core.files import locks
from django.core.files.storage import FileSystemStorage


class AtomicFileSystemStorage(FileSystemStorage):
    """A :class:`FileSystemStorage` that never leaves a partial file."""

    def _save(self, name, content):
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        if self.directory_permissions_mode is not None:
            old_umask = os.umask(0o777 & ~self.directory_permissions_mode)
            try:
                os.makedirs(directory, self.directory_permissions_mode, exist_ok=True)
            finally:
                os.umask(old_umask)
        else:
            os.makedirs(directory, exist_ok=True)
        temporary = os.path.join(directory, f".partial-{secrets.token_hex(8)}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            with os.fdopen(fd, "wb") as handle:
                locks.lock(handle, locks.LOCK_EX)
                for chunk in content.chunks():
                    handle.write(chunk if isinstance(chunk, bytes) else chunk.encode())
                handle.flush()
                os.fsync(handle.fileno())
            while True:
                try:
                    os.link(temporary, full_path)  # fails if the name exists: never overwrites
                    break
                except FileExistsError:
                    name = self.get_available_name(name)
                    full_path = self.path(name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
        if self.file_permissions_mode is not None:
            os.chmod(full_path, self.file_permissions_mode)
        return str(name).replace("\\", "/")


def describe_storage_error(exc: OSError) -> str:
    """A researcher-readable reason why a file could not be stored."""
    reasons = {
        errno.ENOSPC: "the media store is full",
        errno.EDQUOT: "the media store's quota is used up",
        errno.EROFS: "the media store is read-only",
        errno.EFBIG: "the media store refuses files this large",
        errno.EACCES: "the media store refuses writes (permissions)",
        errno.EPERM: "the media store refuses writes (permissions)",
    }
    reason = reasons.get(exc.errno, "the media store could not write it")
    return f"not stored: {reason} ({exc.strerror or exc}); nothing of this file was kept"
