"""SSIM, MS-SSIM and PSNR against scikit-image and an independent MS-SSIM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from stylecore._checks import ShapeError
from stylecore.io import load_image
from stylecore.metrics.psnr import psnr
from stylecore.metrics.ssim import MS_SSIM_WEIGHTS, SSIM, ms_ssim, ssim, ssim_rgb

skm = pytest.importorskip("skimage.metrics")

TID_NAMES = ["I03", "I04", "I06", "I08", "I19"]


def _luma255(x: torch.Tensor) -> np.ndarray:
    """MATLAB rgb2gray of an 8-bit image: BT.601 weights, rounded to integers."""
    arr = x[0].double().numpy() * 255.0
    return np.round(0.298936021293775 * arr[0] + 0.587043074451121 * arr[1] + 0.114020904255103 * arr[2])


# Values of the reference MATLAB ssim.m / PSNR on these pairs, as published in
# the calibration table of IQA-PyTorch (ResultsCalibra/results_original.csv).
PUBLISHED_SSIM = {"I03": 0.6993, "I04": 0.9978, "I06": 0.9989, "I08": 0.9669, "I19": 0.6519}
PUBLISHED_PSNR = {"I03": 21.11, "I04": 20.99, "I06": 27.01, "I08": 23.3, "I19": 21.62}
# Their MS-SSIM row comes from a MATLAB run with an unstated luma conversion;
# it agrees to about 5e-3, a sanity bound rather than a definition check.
PUBLISHED_MS_SSIM = {"I03": 0.6733, "I04": 0.9996, "I06": 0.9998, "I08": 0.9566, "I19": 0.8462}


@pytest.fixture(scope="module")
def tid_pairs(reference_dir):
    pairs = []
    for name in TID_NAMES:
        ref = load_image(reference_dir / "tid2013" / "ref" / f"{name}.bmp")
        dist = load_image(reference_dir / "tid2013" / "dist" / f"{name}.bmp")
        pairs.append((name, ref, dist))
    return pairs


class TestSSIM:
    def test_matches_skimage_on_tid2013(self, tid_pairs):
        """Luma SSIM equals skimage's Gaussian SSIM (sigma 1.5, L 255) within 1e-4."""
        values = []
        for name, ref, dist in tid_pairs:
            want = skm.structural_similarity(
                _luma255(ref), _luma255(dist), gaussian_weights=True, sigma=1.5,
                use_sample_covariance=False, data_range=255,
            )
            got = float(ssim(dist, ref))
            assert abs(got - want) < 1e-4, (name, got, want)
            values.append(got)
        # The distortions differ in strength: the check is not on a constant.
        assert min(values) < 0.95 and max(values) - min(values) > 0.05

    def test_matches_published_ssim_m_values(self, tid_pairs):
        """The published ssim.m values of the TID2013 calibration pairs are reproduced."""
        for name, ref, dist in tid_pairs:
            assert abs(float(ssim(dist, ref)) - PUBLISHED_SSIM[name]) < 1e-4, name

    def test_rgb_variant_matches_skimage_channel_axis(self, tid_pairs):
        """ssim-rgb equals skimage's per-channel SSIM mean."""
        _, ref, dist = tid_pairs[0]
        want = skm.structural_similarity(
            dist[0].permute(1, 2, 0).double().numpy() * 255, ref[0].permute(1, 2, 0).double().numpy() * 255,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=2,
        )
        assert abs(float(ssim_rgb(dist, ref)) - want) < 1e-4

    def test_random_small_images_and_batch(self):
        """A batch gives the per-image values; float32 and float64 agree."""
        g = torch.Generator().manual_seed(0)
        a, b = torch.rand(3, 3, 40, 48, generator=g), torch.rand(3, 3, 40, 48, generator=g)
        b = (0.7 * a + 0.3 * b).clamp(0, 1)
        got = ssim(a, b)
        assert got.shape == (3,) and got.dtype == torch.float32
        for i in range(3):
            want = skm.structural_similarity(
                _luma255(a[i : i + 1]), _luma255(b[i : i + 1]), gaussian_weights=True, sigma=1.5,
                use_sample_covariance=False, data_range=255,
            )
            assert abs(float(got[i]) - want) < 1e-4
        assert torch.allclose(ssim(a.double(), b.double()).float(), got, atol=1e-6)
        assert torch.allclose(SSIM()(a, b), got)

    @pytest.mark.parametrize(
        "a, b, error",
        [
            (torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 30), ShapeError),
            (torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32), ShapeError),
            (torch.full((1, 3, 32, 32), float("nan")), torch.rand(1, 3, 32, 32), ValueError),
            (torch.rand(0, 3, 32, 32), torch.rand(0, 3, 32, 32), ShapeError),
            (torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), ValueError),
            (torch.rand(1, 3, 16, 16) * 2, torch.rand(1, 3, 16, 16), ValueError),
        ],
    )
    def test_bad_input_raises(self, a, b, error):
        """Size mismatch, grayscale, NaN, empty, too small or out of range raise."""
        with pytest.raises(error):
            ssim(a, b)


def _ms_ssim_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2003 written out directly (valid filtering, 2x2 box subsampling)."""
    r = np.arange(11) - 5.0
    g = np.exp(-(r**2) / (2 * 1.5**2))
    win = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    value = 1.0
    for level, w in enumerate(MS_SSIM_WEIGHTS):
        f = lambda im: convolve2d(im, win, mode="valid")  # noqa: E731
        mx, my = f(x), f(y)
        vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
        cs = (2 * cxy + c2) / (vx + vy + c2)
        lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
        term = (lum * cs).mean() if level == len(MS_SSIM_WEIGHTS) - 1 else cs.mean()
        value *= max(term, 0.0) ** w
        h, wd = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
        x = x[:h, :wd].reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
        y = y[:h, :wd].reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
    return value


class TestMSSSIM:
    def test_matches_direct_formula_on_tid2013(self, tid_pairs):
        """MS-SSIM equals the paper's formula computed with scipy."""
        for name, ref, dist in tid_pairs[:3]:
            ref_c, dist_c = ref[..., :192, :256], dist[..., :192, :256]
            want = _ms_ssim_numpy(_luma255(dist_c), _luma255(ref_c))
            got = float(ms_ssim(dist_c, ref_c))
            assert abs(got - want) < 1e-5, (name, got, want)
            assert 0 < got < 1

    def test_matches_pytorch_msssim(self, tid_pairs):
        """MS-SSIM equals the pytorch-msssim package on the same luma."""
        pm = pytest.importorskip("pytorch_msssim")
        _, ref, dist = tid_pairs[1]
        ref_c, dist_c = ref[..., :192, :256], dist[..., :192, :256]
        lx = torch.from_numpy(_luma255(dist_c))[None, None]
        ly = torch.from_numpy(_luma255(ref_c))[None, None]
        want = float(pm.ms_ssim(lx, ly, data_range=255, size_average=True))
        assert abs(float(ms_ssim(dist_c, ref_c)) - want) < 1e-5

    def test_close_to_published_values(self, tid_pairs):
        """Full-size MS-SSIM is within 5e-3 of the published MATLAB numbers."""
        for name, ref, dist in tid_pairs:
            assert abs(float(ms_ssim(dist, ref)) - PUBLISHED_MS_SSIM[name]) < 5e-3, name

    def test_too_small_raises(self):
        """Images under 176 px cannot hold five scales: a clear error."""
        x = torch.rand(1, 3, 128, 128)
        with pytest.raises(ValueError, match="176"):
            ms_ssim(x, x)


class TestPSNR:
    def test_matches_skimage(self, tid_pairs):
        """PSNR equals skimage's peak_signal_noise_ratio on the same data."""
        for name, ref, dist in tid_pairs:
            want = skm.peak_signal_noise_ratio(ref[0].double().numpy(), dist[0].double().numpy(), data_range=1)
            assert abs(float(psnr(dist, ref)) - want) < 1e-4, name
            assert abs(float(psnr(dist, ref)) - PUBLISHED_PSNR[name]) < 0.006, name

    def test_identical_is_inf_and_known_value(self):
        """Equal images give inf; a uniform error of 0.1 gives exactly 20 dB."""
        x = torch.rand(2, 3, 16, 16) * 0.5
        assert torch.isinf(psnr(x, x)).all()
        assert torch.allclose(psnr(x, x + 0.1), torch.full((2,), 20.0), atol=1e-4)

    def test_bad_input(self):
        """Different sizes raise ShapeError."""
        with pytest.raises(ShapeError):
            psnr(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))
