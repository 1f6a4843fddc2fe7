"""``python -m stylecore transfer``: stylise one content image, write a PNG, print provenance as JSON.

Method parameters come from the registry: every parameter of every method has
a flag (``--alpha``, ``--levels``, ``--iterations`` …, and those of methods
added later, e.g. ``--checkpoint``), and ``--param KEY=VALUE`` sets any of them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

HELP = "stylise a content image with one method; writes a PNG and prints a JSON provenance line"


def _param_flags() -> dict[str, tuple[str, list[str]]]:
    """``param name -> (help, methods having it)`` over all registered methods."""
    from stylecore.methods import available_methods, get_method

    flags: dict[str, tuple[str, list[str]]] = {}
    for name in available_methods():
        for key, schema in get_method(name).params.items():
            help_text, methods = flags.get(key, (schema.help, []))
            flags[key] = (help_text, [*methods, name])
    return flags


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared with ``sheet``: family, seed, device, --param and the per-parameter flags."""
    parser.add_argument("--family", help="weight family (default: the method's first, e.g. vgg19-wct)")
    parser.add_argument("--seed", type=int, default=0, help="seed for any randomness (default 0)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="set any method parameter (repeatable)")  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (e.g. Gatys steps) to stderr")
    group = parser.add_argument_group("method parameters (see each method's schema)")
    for key, (help_text, methods) in sorted(_param_flags().items()):
        group.add_argument(
            "--" + key.replace("_", "-"), dest=f"param_{key}", default=None, metavar="VALUE",
            help=f"{help_text} [{', '.join(methods)}]",
        )  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from stylecore.methods import available_methods

    parser.add_argument("--method", required=True, choices=available_methods(), help="style-transfer method")
    parser.add_argument("--content", required=True, help="content image file")
    parser.add_argument("--style", nargs="+", default=[], metavar="FILE",
                        help="style image file(s); several for interpolation or fusion")  # fmt: skip
    parser.add_argument("--out", required=True, help="output PNG path")
    parser.add_argument("--size", type=int, default=512, help="longer side of the content in pixels (default 512)")
    parser.add_argument("--style-size", type=int, help="longer side of the style images (default: --size)")
    add_common_arguments(parser)


def collect_params(args: argparse.Namespace, method: str | None = None) -> dict[str, Any]:
    """Parameters from ``--param KEY=VALUE`` and the named flags (which win).

    Raises:
        ValueError: malformed ``--param``, or a parameter ``method`` does not have.
    """
    params: dict[str, Any] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param needs KEY=VALUE, got {item!r}")
        params[key.strip().replace("-", "_")] = value
    for key, value in vars(args).items():
        if key.startswith("param_") and value is not None:
            params[key[len("param_") :]] = value
    if method is not None:
        from stylecore.methods import get_method

        spec = get_method(method)
        unknown = sorted(set(params) - set(spec.params))
        if unknown:
            raise ValueError(
                f"method {method!r} has no parameter(s) {', '.join(unknown)}; it has: "
                + (", ".join(sorted(spec.params)) or "none")
            )
    return params


def check_device(device: str) -> str:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device is available here")
    torch.device(device)  # raises on a malformed name
    return device


def setup_logging(verbose: bool) -> None:
    if verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")


def run(args: argparse.Namespace) -> int:
    import torch

    from stylecore.io import load_image, save_image
    from stylecore.methods import get_method, provenance_for, stylize

    setup_logging(args.verbose)
    spec = get_method(args.method)
    params = spec.validate(collect_params(args, args.method))
    family = spec.resolve_family(args.family)
    device = check_device(args.device)
    if spec.needs_style and not args.style:
        raise ValueError(f"method {args.method!r} needs --style")
    content = load_image(args.content, max_side=args.size, device=device)
    styles = [load_image(s, max_side=args.style_size or args.size, device=device) for s in args.style]
    style: Any = None
    if spec.needs_style:
        style = styles[0] if len(styles) == 1 else styles
    start = time.perf_counter()
    out = stylize(args.method, content, style, params=params, family=family, seed=args.seed, device=device)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    path = save_image(out.cpu(), args.out)
    record = provenance_for(args.method, params=params, family=family, seed=args.seed, device=device,
                            seconds=seconds)  # fmt: skip
    record.update({"content": str(Path(args.content)), "styles": [str(Path(s)) for s in args.style],
                   "out": str(path), "size": list(out.shape[-2:])})  # fmt: skip
    print(json.dumps(record, sort_keys=True))
    return 0
