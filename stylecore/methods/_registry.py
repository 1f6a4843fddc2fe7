"""The method registry: parameter schemas, validation, dispatch and provenance.

Each style-transfer method is a module in :mod:`stylecore.methods` that calls
:func:`register_method` with a :class:`MethodSpec` at import time. Modules are
discovered with :mod:`pkgutil` (as CLI subcommands are), so adding a method
touches no shared file.
"""

from __future__ import annotations

import difflib
import importlib
import math
import pkgutil
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .._checks import check_image

__all__ = [
    "GridResult",
    "MethodSpec",
    "Param",
    "available_methods",
    "get_method",
    "register_method",
    "stylize",
    "stylize_grid",
]

_KINDS = ("float", "int", "bool", "choice", "str")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

_METHODS: dict[str, MethodSpec] = {}
_DISCOVERED = False


@dataclass(frozen=True)
class Param:
    """Schema of one method parameter (forms and CLI flags are built from it).

    Attributes:
        kind: ``"float"``, ``"int"``, ``"bool"``, ``"choice"`` or ``"str"``.
        default: value used when the parameter is not given (``None`` allowed
            for ``"str"``: "not set").
        minimum: inclusive lower bound (numbers only).
        maximum: inclusive upper bound (numbers only).
        choices: allowed values for ``"choice"``.
        help: one line for people.

    Example:
        >>> Param("float", 1.0, minimum=0.0, maximum=1.0).coerce("0.5", "alpha")
        0.5
    """

    kind: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Param kind must be one of {_KINDS}, got {self.kind!r}")
        if self.kind == "choice":
            if not self.choices:
                raise ValueError("a 'choice' Param needs choices")
            object.__setattr__(self, "choices", tuple(self.choices))

    def coerce(self, value: Any, name: str) -> Any:
        """Convert ``value`` (possibly a string from a form or the CLI) and check it.

        Raises:
            ValueError: wrong type or out of range; the message names ``name``.
        """
        try:
            if self.kind == "float":
                if isinstance(value, bool):
                    raise TypeError
                out: Any = float(value)
                if not math.isfinite(out):
                    raise ValueError(f"parameter {name!r} must be finite, got {value!r}")
            elif self.kind == "int":
                if isinstance(value, bool):
                    raise TypeError
                as_float = float(value)
                if not as_float.is_integer():
                    raise ValueError(f"parameter {name!r} must be an integer, got {value!r}")
                out = int(as_float)
            elif self.kind == "bool":
                if isinstance(value, bool):
                    out = value
                elif isinstance(value, (int, float)) and value in (0, 1):
                    out = bool(value)
                elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                    out = value.strip().lower() in _TRUE
                else:
                    raise TypeError
            elif self.kind == "choice":
                matches = [c for c in self.choices or () if c == value or str(c) == str(value)]
                if not matches:
                    raise ValueError(
                        f"parameter {name!r} must be one of "
                        f"{', '.join(map(str, self.choices or ()))}; got {value!r}"
                    )
                out = matches[0]
            else:
                out = None if value is None else str(value)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ValueError) and str(exc).startswith("parameter"):
                raise
            raise ValueError(f"parameter {name!r} must be a {self.kind}, got {value!r}") from None
        if self.kind in ("float", "int"):
            if self.minimum is not None and out < self.minimum:
                raise ValueError(
                    f"parameter {name!r} must be >= {self.minimum}, got {out}"
                    + _range_text(self)
                )
            if self.maximum is not None and out > self.maximum:
                raise ValueError(
                    f"parameter {name!r} must be <= {self.maximum}, got {out}"
                    + _range_text(self)
                )
        return out


def _range_text(p: Param) -> str:
    lo = "-inf" if p.minimum is None else p.minimum
    hi = "inf" if p.maximum is None else p.maximum
    return f" (allowed range [{lo}, {hi}])"


RunFn = Callable[..., torch.Tensor]
GridFn = Callable[..., dict[tuple[int, int], torch.Tensor]]


@dataclass(frozen=True, kw_only=True)
class MethodSpec:
    """A registered style-transfer method.

    Attributes:
        name: registry name (lowercase, hyphens).
        description: one line for people.
        run: ``run(content, style, *, family, seed, **params) -> (B, 3, H, W)``
            on the content's device, in [0, 1]. ``style`` is ``None`` when
            ``needs_style`` is false.
        params: the parameter schema.
        families: weight families it can run on, first = default; ``("",)``
            for a method that uses no encoder family.
        needs_style: whether a style image is required.
        run_grid: optional batch path ``run_grid(contents, styles, *, family,
            seed, **params) -> {(i, j): (1, 3, H, W)}`` that shares work across
            the grid; without it each pair is run on its own.
        weights: ``weights(family, params) -> list of weight names`` used, for
            provenance (default: none).
        notes: ``notes(family, params) -> str`` caveats for provenance.
        levels: ``levels(family, params) -> [level, …]`` the encoder levels a
            run uses, deepest first (recorded in provenance).
        departure: ``departure(family, params) -> str`` how a run with these
            parameters departs from the method's paper (empty when it does not).
        check: cross-parameter validation ``check(params) -> None`` that raises
            ``ValueError``.
        inference_only: run under ``torch.inference_mode()``; optimisation
            methods (Gatys) set ``False``.
    """

    name: str
    description: str
    run: RunFn
    params: Mapping[str, Param] = field(default_factory=dict)
    families: tuple[str, ...] = ("",)
    needs_style: bool = True
    run_grid: GridFn | None = None
    weights: Callable[[str, dict[str, Any]], list[str]] | None = None
    notes: Callable[[str, dict[str, Any]], str] | None = None
    levels: Callable[[str, dict[str, Any]], list[int]] | None = None
    departure: Callable[[str, dict[str, Any]], str] | None = None
    check: Callable[[dict[str, Any]], None] | None = None
    inference_only: bool = True

    def validate(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Fill defaults, coerce types and check ranges.

        Raises:
            ValueError: unknown parameter (with a suggestion) or a bad value;
                the message names the parameter.

        Example:
            >>> get_method("color").validate({"strength": "0.5"})["strength"]
            0.5
        """
        params = dict(params or {})
        out: dict[str, Any] = {}
        for key in params:
            if key not in self.params:
                close = difflib.get_close_matches(key, list(self.params), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                known = ", ".join(sorted(self.params)) or "none"
                raise ValueError(
                    f"method {self.name!r} has no parameter {key!r}.{hint} Known: {known}"
                )
        for key, schema in self.params.items():
            value = params.get(key, schema.default)
            out[key] = value if value is None and schema.kind == "str" else schema.coerce(value, key)
        if self.check is not None:
            self.check(out)
        return out

    def describe_defaults(self) -> str:
        """One line per family on what the defaults run and how they depart from the paper."""
        if self.departure is None or self.levels is None:
            return ""
        lines = []
        for family in self.families:
            defaults = self.validate({})
            levels = ", ".join(f"relu{lv}_1" for lv in self.levels(family, defaults))
            departs = self.departure(family, defaults)
            lines.append(f"{family}: {levels}" + (f" (departs from the paper: {departs})" if departs else " (as published)"))
        return "\n".join(lines)

    def resolve_family(self, family: str | None) -> str:
        """The family to use: ``family`` if supported, else the default.

        Raises:
            ValueError: ``family`` is not one this method runs on.
        """
        if family is None or family == "":
            return self.families[0]
        if family not in self.families:
            close = difflib.get_close_matches(family, self.families, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            supported = ", ".join(f for f in self.families if f) or "none (uses no weights)"
            raise ValueError(
                f"method {self.name!r} cannot run on family {family!r}.{hint} "
                f"Supported: {supported}"
            )
        return family


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to the registry and return it.

    Raises:
        ValueError: another method already has this name.
    """
    if not isinstance(spec, MethodSpec):
        raise TypeError(f"register_method needs a MethodSpec, got {type(spec).__name__}")
    existing = _METHODS.get(spec.name)
    if existing is not None and existing is not spec:
        raise ValueError(f"a method named {spec.name!r} is already registered")
    _METHODS[spec.name] = spec
    return spec


def _discover() -> None:
    global _DISCOVERED  # noqa: PLW0603 (one-time import of the method modules)
    if _DISCOVERED:
        return
    package = importlib.import_module("stylecore.methods")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"stylecore.methods.{info.name}")
    _DISCOVERED = True


def available_methods() -> list[str]:
    """Names of all registered methods, sorted.

    Example:
        >>> "color" in available_methods()
        True
    """
    _discover()
    return sorted(_METHODS)


def get_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` called ``name``.

    Raises:
        ValueError: unknown name, with a "Did you mean" suggestion.
    """
    _discover()
    try:
        return _METHODS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_METHODS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown method {name!r}.{hint} Available: {', '.join(sorted(_METHODS))}"
        ) from None


@dataclass
class GridResult:
    """Outputs of :func:`stylize_grid`.

    Attributes:
        images: ``(content_index, style_index) -> (1, 3, H, W)`` float CPU
            tensor in [0, 1] (style index 0 for methods without a style).
        provenance: JSON-serialisable record of how the images were made.
    """

    images: dict[tuple[int, int], torch.Tensor]
    provenance: dict[str, Any]

    def __len__(self) -> int:
        return len(self.images)


def _provenance(
    spec: MethodSpec, params: dict[str, Any], family: str, seed: int, device: torch.device, seconds: float
) -> dict[str, Any]:
    from .. import __version__

    weights: dict[str, str] = {}
    if spec.weights is not None:
        from ..weights import file_sha256

        for name in spec.weights(family, params):
            weights[name] = file_sha256(name)
    notes = spec.notes(family, params) if spec.notes is not None else ""
    levels = spec.levels(family, params) if spec.levels is not None else None
    return {
        "method": spec.name,
        "params": params,
        "family": family or None,
        "weights": weights,
        "levels": None if levels is None else [f"relu{lv}_1" for lv in levels],
        "departs_from_paper": spec.departure(family, params) if spec.departure is not None else "",
        "seed": int(seed),
        "device": str(device),
        "versions": {
            "stylecore": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "seconds": round(seconds, 4),
        "notes": notes,
    }


def _check_style(spec: MethodSpec, style: Any, name: str = "style") -> None:
    if not spec.needs_style:
        return
    if style is None:
        raise ValueError(f"method {spec.name!r} needs a style image")
    styles = style if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise ValueError(f"method {spec.name!r} needs at least one style image")
    for k, s in enumerate(styles):
        check_image(s, name if len(styles) == 1 else f"{name}[{k}]")


def _to(x: Any, device: torch.device) -> Any:
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return [t.to(device) for t in x]
    return x.to(device)


def _call(spec: MethodSpec, fn: Callable[[], Any]) -> Any:
    if spec.inference_only:
        with torch.inference_mode():
            return fn()
    return fn()


def stylize(
    name: str,
    content: torch.Tensor,
    style: torch.Tensor | Sequence[torch.Tensor] | None,
    *,
    params: Mapping[str, Any] | None = None,
    family: str | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Stylise ``content`` with method ``name``.

    Args:
        name: method name (see :func:`available_methods`).
        content: ``(B, 3, H, W)`` float in [0, 1].
        style: ``(1 or B, 3, Hs, Ws)`` float in [0, 1]; a list of such for
            methods that blend several styles; ``None`` for methods without one.
        params: method parameters (validated against the schema).
        family: weight family (default: the method's first).
        seed: seed for any randomness; equal inputs give equal outputs.
        device: where the work runs.

    Returns:
        ``(B, 3, H, W)`` float in [0, 1] on ``device``.

    Raises:
        ValueError: unknown method, family or parameter, or bad images.
        MissingWeightsError: a needed weight file is absent.

    Example:
        >>> out = stylize("color", torch.rand(1, 3, 16, 16), torch.rand(1, 3, 8, 8))
        >>> tuple(out.shape)
        (1, 3, 16, 16)
    """
    spec = get_method(name)
    values = spec.validate(params)
    fam = spec.resolve_family(family)
    check_image(content, "content")
    _check_style(spec, style)
    dev = torch.device(device)
    c, s = content.to(dev), _to(style, dev) if spec.needs_style else None
    return _call(spec, lambda: spec.run(c, s, family=fam, seed=seed, **values))


def stylize_grid(
    name: str,
    contents: Sequence[torch.Tensor],
    styles: Sequence[torch.Tensor],
    *,
    params: Mapping[str, Any] | None = None,
    family: str | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> GridResult:
    """Stylise every content with every style, sharing work across the grid.

    Style-side work (encoding, covariance eigendecompositions, Gram targets)
    is done once per style and content-side work once per content where the
    method provides a batch path; models are cached per process and device.

    Args:
        name: method name.
        contents: ``(1, 3, H, W)`` images in [0, 1] (sizes may differ).
        styles: ``(1, 3, H, W)`` images in [0, 1]; ignored (may be empty) for
            methods without a style.
        params, family, seed, device: as in :func:`stylize`.

    Returns:
        A :class:`GridResult`; images are on the CPU.

    Example:
        >>> r = stylize_grid("color", [torch.rand(1, 3, 8, 8)] * 2, [torch.rand(1, 3, 8, 8)])
        >>> sorted(r.images), r.provenance["method"]
        ([(0, 0), (1, 0)], 'color')
    """
    spec = get_method(name)
    values = spec.validate(params)
    fam = spec.resolve_family(family)
    if not contents:
        raise ValueError("stylize_grid needs at least one content image")
    for i, c in enumerate(contents):
        check_image(c, f"contents[{i}]")
        if c.shape[0] != 1:
            raise ValueError(f"contents[{i}] must be a single image (1, 3, H, W), got {tuple(c.shape)}")
    if spec.needs_style:
        if not styles:
            raise ValueError(f"method {spec.name!r} needs at least one style image")
        for j, s in enumerate(styles):
            check_image(s, f"styles[{j}]")
            if s.shape[0] != 1:
                raise ValueError(f"styles[{j}] must be a single image (1, 3, H, W), got {tuple(s.shape)}")
    dev = torch.device(device)
    cs = [c.to(dev) for c in contents]
    ss = [s.to(dev) for s in styles] if spec.needs_style else []
    start = time.perf_counter()

    def work() -> dict[tuple[int, int], torch.Tensor]:
        if spec.run_grid is not None:
            out = spec.run_grid(cs, ss if spec.needs_style else [None], family=fam, seed=seed, **values)
        else:
            out = {}
            for j, s in enumerate(ss if spec.needs_style else [None]):
                for i, c in enumerate(cs):
                    out[(i, j)] = spec.run(c, s, family=fam, seed=seed, **values)
        return {k: v.detach().to("cpu") for k, v in out.items()}

    images = _call(spec, work)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    return GridResult(images=images, provenance=_provenance(spec, values, fam, seed, dev, seconds))


def provenance_for(
    name: str,
    *,
    params: Mapping[str, Any] | None = None,
    family: str | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    seconds: float = 0.0,
) -> dict[str, Any]:
    """The provenance record :func:`stylize_grid` would give, for a single run."""
    spec = get_method(name)
    values = spec.validate(params)
    return _provenance(spec, values, spec.resolve_family(family), seed, torch.device(device), seconds)
