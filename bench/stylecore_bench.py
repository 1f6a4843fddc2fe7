"""Benchmark of the stylecore style-transfer methods.

1. Images per second of every method at 256 and 512 px (content and style at
   that longer side).
2. A study grid (default 8 contents x 4 styles) through multi-level WCT:
   ``stylize_grid`` (style work once per style, content work once per content,
   batched decoding) against a naive baseline as common reference code does it
   (each pair on its own, per-image float32 SVD, no batching, no reuse), at
   equal output (the PSNR between the two outputs is printed). The ratio is the
   speed-up of the grid path.

Usage:
    python bench/stylecore_bench.py                      # CPU, about 5 min on 2 cores
    python bench/stylecore_bench.py --device cuda --grid-size 512
    python bench/stylecore_bench.py --sizes 256 --methods wct adain --skip-grid

Needs the real weights (``STYLECORE_WEIGHTS_DIR``, default ../shared/weights)
and sample images (``STYLESTUDY_SAMPLES_DIR``, default ../shared/samples).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
# Benchmark this checkout's stylecore, not whichever copy is installed.
sys.path.insert(0, str(REPO))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _images(folder: Path, count: int, size: int, device: torch.device) -> list[torch.Tensor]:
    from stylecore.io import load_image

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not files:
        sys.exit(f"no images in {folder}")
    # Cycle when asked for more images than the folder holds.
    return [load_image(files[k % len(files)], max_side=size, device=device) for k in range(count)]


def _square(x: torch.Tensor, size: int) -> torch.Tensor:
    # Throughput is measured on size x size crops so every method sees the same pixel count.
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True).clamp(0, 1)


def bench_methods(args: argparse.Namespace, device: torch.device) -> list[dict]:
    from stylecore.methods import available_methods, stylize

    samples = Path(os.environ.get("STYLESTUDY_SAMPLES_DIR") or SHARED / "samples")
    rows = []
    methods = args.methods or available_methods()
    for size in args.sizes:
        content = _square(_images(samples / "content", 1, size, device)[0], size)
        style = _square(_images(samples / "style", 1, size, device)[0], size)
        for name in methods:
            params = {"iterations": args.gatys_iterations} if name == "gatys" else {}
            if name == "gatys" and size > args.gatys_max_size:
                continue
            stylize(name, content, style, params=params, device=device)  # warm-up: loads and caches weights
            _sync(device)
            start = time.perf_counter()
            for _ in range(args.repeats):
                stylize(name, content, style, params=params, device=device)
            _sync(device)
            seconds = (time.perf_counter() - start) / args.repeats
            note = f" ({args.gatys_iterations} L-BFGS iterations)" if name == "gatys" else ""
            rows.append({"method": name, "size": size, "seconds": seconds, "images_per_s": 1 / seconds})
            print(f"{name:14} {size:4d} px  {1 / seconds:8.3f} images/s  ({seconds:.3f} s/image){note}",
                  flush=True)  # fmt: skip
    return rows


def _naive_wct_pair(content: torch.Tensor, style: torch.Tensor, levels: list[int], eps: float) -> torch.Tensor:
    """One pair, as reference implementations do it: every level re-encodes both images and
    decomposes both covariances with a float32 SVD; nothing is shared or batched."""
    from stylecore.io import crop_to, pad_to_multiple
    from stylecore.models.autoencoder import load_decoder, load_encoder

    x, size = pad_to_multiple(content, 2 ** (max(levels) - 1))
    for level in levels:
        enc, dec = load_encoder("vgg19-wct", level, x.device), load_decoder("vgg19-wct", level, x.device)
        fc, fs = enc(x)[0], enc(style)[0]
        c, h, w = fc.shape
        cf, sf = fc.reshape(c, -1), fs.reshape(c, -1)
        cm, sm = cf.mean(1, keepdim=True), sf.mean(1, keepdim=True)
        cf, sf = cf - cm, sf - sm
        eye = torch.eye(c, device=x.device)
        c_cov = cf @ cf.T / (cf.shape[1] - 1)
        s_cov = sf @ sf.T / (sf.shape[1] - 1)
        # The same ridge as stylecore's WCT, so both produce the same image.
        c_cov = c_cov + eps * c_cov.trace() / c * eye
        s_cov = s_cov + eps * s_cov.trace() / c * eye
        cu, ce, _ = torch.svd(c_cov)
        su, se, _ = torch.svd(s_cov)
        whitened = cu @ torch.diag(ce.pow(-0.5)) @ cu.T @ cf
        coloured = su @ torch.diag(se.pow(0.5)) @ su.T @ whitened + sm
        x = dec(coloured.reshape(1, c, h, w))
    return crop_to(x, size)


def bench_grid(args: argparse.Namespace, device: torch.device) -> dict:
    from stylecore.methods import stylize_grid
    from stylecore.models.autoencoder import available_levels

    samples = Path(os.environ.get("STYLESTUDY_SAMPLES_DIR") or SHARED / "samples")
    contents = _images(samples / "content", args.grid_contents, args.grid_size, device)
    styles = _images(samples / "style", args.grid_styles, args.grid_size, device)
    levels = sorted(available_levels("vgg19-wct"), reverse=True)
    eps = 1e-5
    # Warm-up both paths (weight loading and hashing are not what is measured).
    stylize_grid("wct", contents[:1], styles[:1], device=device)
    with torch.inference_mode():
        _naive_wct_pair(contents[0], styles[0], levels, eps)
    _sync(device)

    start = time.perf_counter()
    with torch.inference_mode():
        naive = {(i, j): _naive_wct_pair(c, s, levels, eps).cpu()
                 for j, s in enumerate(styles) for i, c in enumerate(contents)}  # fmt: skip
    _sync(device)
    t_naive = time.perf_counter() - start

    start = time.perf_counter()
    grid = stylize_grid("wct", contents, styles, device=device)
    _sync(device)
    t_grid = time.perf_counter() - start

    diffs = [float((grid.images[k] - naive[k]).abs().max()) for k in naive]
    mses = [float((grid.images[k] - naive[k]).square().mean()) for k in naive]
    psnr = 10 * torch.log10(torch.tensor(1.0 / max(max(mses), 1e-20))).item()
    pairs = len(naive)
    result = {
        "grid": f"{len(contents)}x{len(styles)}", "size": args.grid_size, "levels": levels,
        "naive_seconds": t_naive, "grid_seconds": t_grid, "speedup": t_naive / t_grid,
        "naive_pairs_per_s": pairs / t_naive, "grid_pairs_per_s": pairs / t_grid,
        "max_abs_diff": max(diffs), "min_psnr_db": psnr,
    }  # fmt: skip
    print(
        f"WCT grid {result['grid']} at {args.grid_size} px, levels {levels}: naive {t_naive:.1f} s "
        f"({pairs / t_naive:.2f} pairs/s), stylize_grid {t_grid:.1f} s ({pairs / t_grid:.2f} pairs/s), "
        f"speed-up {t_naive / t_grid:.2f}x; outputs agree to max |diff| {max(diffs):.4f}, "
        f"PSNR >= {psnr:.1f} dB",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="image sizes (default 256 512)")
    parser.add_argument("--methods", nargs="+", help="methods to time (default: all registered)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per method and size (default 1)")
    parser.add_argument("--gatys-iterations", type=int, default=10, help="L-BFGS iterations timed (default 10)")
    parser.add_argument("--gatys-max-size", type=int, default=256,
                        help="skip Gatys above this size (default 256; it is slow on a CPU)")  # fmt: skip
    parser.add_argument("--grid-contents", type=int, default=8, help="contents in the grid (default 8)")
    parser.add_argument("--grid-styles", type=int, default=4, help="styles in the grid (default 4)")
    parser.add_argument("--grid-size", type=int, default=256, help="grid image size (default 256; 512 for a long run)")
    parser.add_argument("--skip-methods", action="store_true", help="only the grid benchmark")
    parser.add_argument("--skip-grid", action="store_true", help="only the per-method benchmark")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", metavar="FILE", help="also write all numbers to FILE as JSON")
    args = parser.parse_args(argv)

    os.environ.setdefault("STYLECORE_WEIGHTS_DIR", str(SHARED / "weights"))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device available")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"stylecore bench on {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads",
          flush=True)  # fmt: skip
    report: dict = {"device": str(device), "device_name": name, "torch": torch.__version__,
                    "threads": torch.get_num_threads()}  # fmt: skip
    if not args.skip_methods:
        report["methods"] = bench_methods(args, device)
    if not args.skip_grid:
        report["wct_grid"] = bench_grid(args, device)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
