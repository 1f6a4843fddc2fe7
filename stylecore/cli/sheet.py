"""``python -m stylecore sheet``: a contact sheet of content × style × method for people to look at."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .transfer import add_common_arguments, check_device, collect_params, setup_logging

HELP = "draw a contact sheet of contents x styles x methods into one PNG"

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
_DEFAULT_METHODS = "color,wct,adain,fusion,feature-match,arbitrary"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contents", required=True, help="folder (searched recursively) or image file")
    parser.add_argument("--styles", required=True, help="folder (searched recursively) or image file")
    parser.add_argument("--methods", nargs="+", default=[_DEFAULT_METHODS],
                        help=f"methods, space- or comma-separated (default: {_DEFAULT_METHODS})")  # fmt: skip
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--size", type=int, default=256, help="longer side the methods run at (default 256)")
    parser.add_argument("--tile", type=int, default=160, help="tile size in the sheet (default 160)")
    parser.add_argument("--max-contents", type=int, default=4, help="at most this many contents (default 4)")
    parser.add_argument("--max-styles", type=int, default=4, help="at most this many styles (default 4)")
    add_common_arguments(parser)


def _images(location: str, limit: int) -> list[Path]:
    path = Path(location)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"{location} is neither an image file nor a folder")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"no images in {location}")
    return files[:limit]


def run(args: argparse.Namespace) -> int:
    from PIL import Image, ImageDraw

    from stylecore.io import load_image, save_image, tensor_to_pil
    from stylecore.methods import get_method, stylize_grid

    setup_logging(args.verbose)
    device = check_device(args.device)
    methods = [m for item in args.methods for m in item.split(",") if m]
    specs = [get_method(m) for m in methods]
    raw = collect_params(args)
    contents_p, styles_p = _images(args.contents, args.max_contents), _images(args.styles, args.max_styles)
    contents = [load_image(p, max_side=args.size, device=device) for p in contents_p]
    styles = [load_image(p, max_side=args.size, device=device) for p in styles_p]
    tile, label_h = args.tile, 18

    def thumb(img: Image.Image) -> Image.Image:
        img = img.copy()
        img.thumbnail((tile, tile))
        canvas = Image.new("RGB", (tile, tile), "white")
        canvas.paste(img, ((tile - img.width) // 2, (tile - img.height) // 2))
        return canvas

    cols = 1 + len(styles)
    block_h = label_h + tile * (1 + len(contents))
    sheet = Image.new("RGB", (cols * tile, block_h * len(specs)), "white")
    draw = ImageDraw.Draw(sheet)
    records = []
    for b, spec in enumerate(specs):
        params = {k: v for k, v in raw.items() if k in spec.params}
        family = args.family if args.family in spec.families else None
        grid = stylize_grid(spec.name, contents, styles if spec.needs_style else [], params=params, family=family,
                            seed=args.seed, device=device)  # fmt: skip
        records.append(grid.provenance)
        top = b * block_h
        draw.text((4, top + 3), f"{spec.name}  ({grid.provenance['family'] or 'no weights'})", fill="black")
        for j, s in enumerate(styles if spec.needs_style else []):
            sheet.paste(thumb(tensor_to_pil(s.cpu())), ((1 + j) * tile, top + label_h))
        for i, c in enumerate(contents):
            y = top + label_h + (1 + i) * tile
            sheet.paste(thumb(tensor_to_pil(c.cpu())), (0, y))
            for (ci, sj), img in grid.images.items():
                if ci == i:
                    sheet.paste(thumb(tensor_to_pil(img)), ((1 + sj) * tile, y))
    from stylecore.io import pil_to_tensor

    out = save_image(pil_to_tensor(sheet), args.out)
    print(json.dumps({"sheet": str(out), "contents": [str(p) for p in contents_p],
                      "styles": [str(p) for p in styles_p], "runs": records}, sort_keys=True))  # fmt: skip
    return 0
