"""One registry helper for methods, metrics and weight files.

Each registry is filled by its package's modules registering entries when
imported; on first lookup every public module of the package (names without a
leading underscore) is imported, so adding a module is all it takes to add
entries. An unknown name raises ``ValueError`` with a "Did you mean"
suggestion from :func:`did_you_mean`.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" Did you mean 'a' or 'b'?"`` for up to three close matches of ``name``, else ``""``.

    Example:
        >>> did_you_mean("ssmi", ["ssim", "psnr"])
        " Did you mean 'ssim'?"
    """
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class Registry(Generic[T]):
    """Entries of one kind by name, discovered from the modules of ``package``.

    Args:
        kind: what an entry is, for messages (``"method"``).
        package: dotted name of the package whose public modules register entries.
        known: the tail of an unknown-name message, given the sorted names.
    """

    def __init__(self, kind: str, package: str, *, known: Callable[[list[str]], str] | None = None) -> None:
        self.kind = kind
        self.package = package
        self.entries: dict[str, T] = {}
        self._known = known or (lambda names: f"Known: {', '.join(names) or 'none'}")
        self._discovered = False

    def register(self, name: str, entry: T, *, same: Callable[[T, T], bool] | None = None) -> T:
        """Add ``entry`` as ``name``; a different entry under a registered name raises ``ValueError``."""
        old = self.entries.get(name)
        if old is not None and not (same or (lambda a, b: a == b))(old, entry):
            raise ValueError(f"a {self.kind} named {name!r} is already registered")
        self.entries[name] = entry
        return entry

    def discover(self) -> None:
        """Import every public module of the package once (they register their entries)."""
        if self._discovered:
            return
        package = importlib.import_module(self.package)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")
        self._discovered = True

    def names(self) -> list[str]:
        self.discover()
        return sorted(self.entries)

    def values(self) -> list[T]:
        return [self.entries[n] for n in self.names()]

    def get(self, name: str) -> T:
        """The entry called ``name``.

        Raises:
            ValueError: unknown name, with a suggestion and the known names.
        """
        self.discover()
        try:
            return self.entries[name]
        except KeyError:
            hint = did_you_mean(name, self.entries)
            raise ValueError(f"unknown {self.kind} {name!r}.{hint} {self._known(sorted(self.entries))}") from None
