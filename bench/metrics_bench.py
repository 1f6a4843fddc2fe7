"""Throughput of stylecore.metrics: images scored per second at 256 and 512 px.

For every metric it prints images/second through ``compute()`` with batching,
and the ratio against baselines measured in the same run:

* ``vs b=1``: the same metric one image per call (the gain from batching);
* ``vs ref``: an outside implementation where one exists here (scikit-image
  for SSIM/PSNR, the stlpips-pytorch package for ST-LPIPS), ratio > 1 = faster.

Usage::

    python bench/metrics_bench.py                 # CPU, 256 and 512 px (~3 min of 2 idle cores)
    python bench/metrics_bench.py --device cuda   # GPU when present
    python bench/metrics_bench.py --metrics ssim st-lpips --sizes 256 --n 16

Weights come from ``STYLECORE_WEIGHTS_DIR`` (default ``../shared/weights``);
unavailable metrics are listed with the reason and skipped.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("STYLECORE_WEIGHTS_DIR", str(ROOT.parent / "shared" / "weights"))

from stylecore.metrics import available_metrics, compute, get_metric  # noqa: E402


def _time(fn: Callable[[], object], device: torch.device, min_time: float, warm_up: bool = True) -> float:
    """Seconds per call: an optional warm-up, then repeat until ``min_time`` has passed."""
    if warm_up:
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / calls


def _reference(name: str, x: torch.Tensor, c: torch.Tensor) -> Callable[[], object] | None:
    """An outside implementation of ``name`` over the same batch, if installed."""
    if name in ("ssim", "psnr"):
        try:
            from skimage.metrics import peak_signal_noise_ratio, structural_similarity
        except ImportError:
            return None
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        xs = ((x.cpu() * w).sum(1) * 255).double().numpy()
        cs = ((c.cpu() * w).sum(1) * 255).double().numpy()
        xr, cr = x.cpu().double().numpy(), c.cpu().double().numpy()
        if name == "ssim":
            return lambda: [
                structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
                for a, b in zip(xs, cs)
            ]
        return lambda: [peak_signal_noise_ratio(b, a, data_range=1) for a, b in zip(xr, cr)]
    if name == "st-lpips":
        import types

        for mod in ("IPython", "torchsummary"):
            sys.modules.setdefault(mod, types.SimpleNamespace(embed=None, summary=None))
        try:
            from stlpips_pytorch import stlpips
        except ImportError:
            return None
        net = stlpips.LPIPS(net="alex", variant="shift_tolerant", verbose=False).to(x.device)

        def run() -> object:
            with torch.inference_mode():
                return net(x, c, normalize=True)

        return run
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="square image sides")
    parser.add_argument("--n", type=int, default=2, help="images per batch")
    parser.add_argument("--metrics", nargs="+", help="metric names (default: every per-image metric)")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds each timing runs at least")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("cuda requested but not available", file=sys.stderr)
        return 1
    names = args.metrics or available_metrics("image")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# stylecore.metrics throughput on {where}; batch of {args.n}")
    print(f"{'metric':22} {'size':>5} {'img/s':>9} {'b=1 img/s':>10} {'vs b=1':>7} {'ref img/s':>10} {'vs ref':>7}")
    g = torch.Generator().manual_seed(0)
    for size in args.sizes:
        content = torch.rand(args.n, 3, size, size, generator=g)
        image = (0.8 * content + 0.2 * torch.rand(args.n, 3, size, size, generator=g)).clamp(0, 1)
        style = torch.rand(args.n, 3, size, size, generator=g)
        for name in names:
            spec = get_metric(name)
            reason = spec.unavailable()
            if reason:
                print(f"{name:22} {size:5d} skipped ({reason})")
                continue
            if name == "ms-ssim" and size < 176:
                print(f"{name:22} {size:5d} skipped (needs 176 px)")
                continue
            x, c, s = image.to(device), content.to(device), style.to(device)

            batched = functools.partial(compute, [name], x, c, s, device=device, batch_size=args.n)
            single = functools.partial(compute, [name], x[:1], c[:1], s[:1], device=device, batch_size=1)

            t_batch = _time(batched, device, args.min_time) / args.n
            # The batched run already loaded the model: no second warm-up.
            t_single = _time(single, device, args.min_time, warm_up=False)
            ref = _reference(name, x, c)
            ref_txt = f"{'-':>10} {'-':>7}"
            if ref is not None:
                t_ref = _time(ref, device, args.min_time) / args.n
                ref_txt = f"{1 / t_ref:10.1f} {t_ref / t_batch:7.2f}"
            print(f"{name:22} {size:5d} {1 / t_batch:9.1f} {1 / t_single:10.1f} {t_single / t_batch:7.2f} {ref_txt}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
