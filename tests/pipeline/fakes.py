"""Stand-ins for ``stylecore.methods`` / ``stylecore.metrics`` following their contract.

The pipeline tests check claiming, batching, OOM handling and storage, not the
style-transfer maths, so they run a trivial method whose output is known.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Param:
    kind: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    help: str = ""


@dataclass
class Spec:
    name: str
    description: str
    params: dict
    families: tuple = ("",)
    needs_style: bool = True
    calls: list = field(default_factory=list)

    def validate(self, params):
        out = {}
        for key in params or {}:
            if key not in self.params:
                raise ValueError(f"method {self.name!r} has no parameter {key!r}")
        for key, p in self.params.items():
            value = (params or {}).get(key, p.default)
            if p.kind == "float":
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise ValueError(f"parameter {key!r} must be a float, got {value!r}") from None
                if p.minimum is not None and value < p.minimum:
                    raise ValueError(f"parameter {key!r} must be >= {p.minimum}, got {value}")
                if p.maximum is not None and value > p.maximum:
                    raise ValueError(f"parameter {key!r} must be <= {p.maximum}, got {value}")
            elif p.kind == "int":
                value = int(value)
            elif p.kind == "choice" and value not in p.choices:
                raise ValueError(f"parameter {key!r} must be one of {p.choices}; got {value!r}")
            out[key] = value
        return out

    def resolve_family(self, family):
        if not family:
            return self.families[0]
        if family not in self.families:
            raise ValueError(f"method {self.name!r} cannot run on family {family!r}")
        return family


@dataclass
class GridResult:
    images: dict
    provenance: dict


def make_methods_module(*, oom_above: int | None = None, fail_with: Exception | None = None) -> types.ModuleType:
    """A module with ``tint`` (mixes content with the style's mean colour) and ``mode``."""
    specs = {
        "tint": Spec("tint", "mix with the style's mean colour",
                     {"strength": Param("float", 0.5, 0.0, 1.0, help="0 = content, 1 = flat style colour")},
                     families=("", "fake-family")),
        "mode": Spec("mode", "choice-only method", {"how": Param("choice", "a", choices=("a", "b"))}),
    }
    mod = types.ModuleType("stylecore.methods")
    mod.specs = specs
    mod.grid_calls = []

    def available_methods():
        return sorted(specs)

    def get_method(name):
        try:
            return specs[name]
        except KeyError:
            raise ValueError(f"unknown method {name!r}") from None

    def stylize_grid(name, contents, styles, *, params=None, family=None, seed=0, device="cpu"):
        spec = get_method(name)
        values = spec.validate(params)
        mod.grid_calls.append((name, len(contents), len(styles)))
        if fail_with is not None:
            raise fail_with
        if oom_above is not None and len(contents) * len(styles) > oom_above:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        strength = values.get("strength", 0.5)
        images = {}
        for j, s in enumerate(styles):
            colour = s.mean(dim=(2, 3), keepdim=True)
            for i, c in enumerate(contents):
                images[(i, j)] = (c * (1 - strength) + colour * strength).clamp(0, 1)
        prov = {"method": name, "params": values, "family": spec.resolve_family(family) or None,
                "weights": {"fake.pth": "0" * 64}, "seed": seed, "device": str(device),
                "versions": {"stylecore": "0.1.0", "torch": torch.__version__}, "seconds": 0.0, "notes": ""}
        return GridResult(images, prov)

    mod.available_methods, mod.get_method, mod.stylize_grid = available_methods, get_method, stylize_grid
    return mod


def make_metrics_module() -> types.ModuleType:
    """``mean_abs_diff`` (output vs content) and ``never`` (always unavailable)."""
    mod = types.ModuleType("stylecore.metrics")
    mod.calls = []
    specs = {"mean_abs_diff": types.SimpleNamespace(version="1"), "never": types.SimpleNamespace(version="1")}

    def compute(names, images, contents=None, styles=None, *, device="cpu"):
        mod.calls.append((tuple(names), len(images)))
        out = []
        for k, img in enumerate(images):
            for name in names:
                if name == "never":
                    out.append({"index": k, "name": name, "version": "1", "value": None,
                                "unavailable": "needs weights that are not installed"})
                else:
                    content = contents[k]
                    if content.shape[-2:] != img.shape[-2:]:  # the contract: references are aligned by compute
                        content = torch.nn.functional.interpolate(content, size=img.shape[-2:], mode="bicubic",
                                                                  antialias=True, align_corners=False).clamp(0, 1)
                    value = float((img - content).abs().mean())
                    out.append({"index": k, "name": name, "version": "1", "value": value, "unavailable": ""})
        return out

    mod.compute = compute
    mod.available_metrics = lambda: sorted(specs)
    mod.get_metric = lambda name: specs[name]
    return mod
