"""``python -m stylecore metrics --image O --content C [--style S] [--metrics NAME …] --json``."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

HELP = "score a stylised image against its content (and style) image"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", help="the stylised image to score")
    parser.add_argument("--content", help="its content image (for content-referenced metrics)")
    parser.add_argument("--style", help="its style image (for style metrics)")
    parser.add_argument(
        "--metrics", nargs="+", metavar="NAME",
        help="metric names (default: every per-image metric the given images allow)",
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--list", action="store_true", help="list the metrics and exit")


def _value(v: float | None) -> float | str | None:
    # JSON has no infinity: PSNR of identical images is written as "inf".
    if v is None or math.isfinite(v):
        return v
    return "inf" if v > 0 else "-inf"


def run(args: argparse.Namespace) -> int:
    from stylecore.io import load_image
    from stylecore.metrics import available_metrics, compute, get_metric

    if args.list:
        for name in available_metrics():
            spec = get_metric(name)
            needs = ",".join(spec.needs) or "-"
            print(f"{name:22} {spec.kind:5} needs={needs:13} v{spec.version:24} {spec.description}")
        return 0
    if not args.image:
        raise ValueError("--image is required (or use --list)")
    given = {"content": args.content is not None, "style": args.style is not None}
    explicit = args.metrics is not None
    if explicit:
        specs = [get_metric(n) for n in args.metrics]
        for spec in specs:
            if spec.kind != "image":
                raise ValueError(f"{spec.name!r} is a set metric; the CLI scores one image")
            missing = [n for n in spec.needs if not given[n]]
            if missing:
                raise ValueError(f"metric {spec.name!r} needs --{missing[0]}")
    else:
        specs = [
            get_metric(n) for n in available_metrics("image") if all(given[k] for k in get_metric(n).needs)
        ]
    image = load_image(args.image)
    content = load_image(args.content) if args.content else None
    style = load_image(args.style) if args.style else None
    rows: list[dict[str, Any]] = []
    for spec in specs:
        skip = "" if explicit else spec.not_applicable(*image.shape[-2:])
        if skip:
            rows.append({"name": spec.name, "version": spec.version, "value": None, "unavailable": skip})
            continue
        try:
            row = compute([spec.name], image, content, style, device=args.device)[0]
        except ValueError as exc:
            if explicit:
                raise
            # A default metric the image does not suit (e.g. MS-SSIM on a small image).
            row = {"name": spec.name, "version": spec.version, "value": None, "unavailable": f"not applicable: {exc}"}
        rows.append(
            {"name": row["name"], "version": row["version"], "value": _value(row["value"]),
             "unavailable": row["unavailable"]}
        )
    if args.json:
        out = {"image": args.image, "content": args.content, "style": args.style, "metrics": rows}
        print(json.dumps(out, allow_nan=False))
    else:
        for r in rows:
            shown = r["unavailable"] if r["value"] is None else f"{r['value']:.6g}" if isinstance(r["value"], float) else r["value"]
            print(f"{r['name']:22} {r['version']:28} {shown}")
    return 0
