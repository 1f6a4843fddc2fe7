"""Style, content, colour and edge metrics against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from stylecore._checks import ShapeError
from stylecore.io import load_image
from stylecore.metrics import compute, get_metric
from stylecore.metrics.color import (
    HIST_BINS,
    color_hist_distance,
    colorfulness,
    rgb_to_lab,
)
from stylecore.metrics.content import content_distance
from stylecore.metrics.edges import edge_preservation
from stylecore.metrics.gram import adain_style_distance, gram_style_distance
from stylecore.models.vgg_caffe import caffe_vgg19

# Indices of torchvision's vgg19().features for the layers used here.
_CONV = {"relu1_1": 0, "relu1_2": 2, "relu2_1": 5, "relu2_2": 7, "relu3_1": 10, "relu3_2": 12}
_ORDER = ["relu1_1", "relu1_2", "pool", "relu2_1", "relu2_2", "pool", "relu3_1", "relu3_2"]


def _caffe_features(x: torch.Tensor, state: dict) -> dict[str, np.ndarray]:
    """VGG19 written out with F.conv2d from the raw state dict (Caffe input convention)."""
    mean = torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64).view(1, 3, 1, 1)
    h = x.double().flip(1) * 255 - mean
    out = {}
    for name in _ORDER:
        if name == "pool":
            h = F.max_pool2d(h, 2)
            continue
        i = _CONV[name]
        h = F.relu(F.conv2d(h, state[f"features.{i}.weight"].double(), state[f"features.{i}.bias"].double(), padding=1))
        out[name] = h[0].numpy()
    return out


@pytest.fixture(scope="module")
def vgg(weights_dir):
    return caffe_vgg19()


@pytest.fixture(scope="module")
def vgg_state(weights_dir):
    return torch.load(weights_dir / "vgg19_caffe_imagenet_to_relu3_4.pth", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def images(samples_dir):
    content = load_image(samples_dir / "content" / "skimage_chelsea.png", max_side=64)[..., :40, :56]
    styles = sorted((samples_dir / "style").glob("*/*.png")) + sorted((samples_dir / "style").glob("*/*.jpg"))
    style = load_image(styles[0], max_side=48)
    return content, style


class TestGramStyle:
    def test_equals_gatys_formula(self, vgg, vgg_state, images):
        """Equals Gatys Eq. 4-5 with unnormalised Gram matrices when sizes match."""
        content, style = images
        style = F.interpolate(style, size=content.shape[-2:], mode="bilinear").clamp(0, 1)
        fx, fs = _caffe_features(content, vgg_state), _caffe_features(style, vgg_state)
        want = 0.0
        for layer in ("relu1_1", "relu2_1", "relu3_1"):
            n, m = fx[layer].shape[0], fx[layer].shape[1] * fx[layer].shape[2]
            a, b = fx[layer].reshape(n, m), fs[layer].reshape(n, m)
            want += ((a @ a.T - b @ b.T) ** 2).sum() / (4 * n**2 * m**2) / 3
        got = float(gram_style_distance(content, style, vgg=vgg))
        assert got == pytest.approx(want, rel=1e-4)
        assert got > 0

    def test_zero_for_same_image_and_any_style_size(self, vgg, images):
        """0 against itself; a style of another size gives a finite positive value."""
        content, style = images
        assert float(gram_style_distance(content, content, vgg=vgg)) == pytest.approx(0.0, abs=1e-3)
        assert style.shape[-2:] != content.shape[-2:]
        assert float(gram_style_distance(content, style, vgg=vgg)) > 0

    def test_bad_input(self, vgg, images):
        """Batch-size mismatch and grayscale raise."""
        content, style = images
        with pytest.raises(ShapeError):
            gram_style_distance(content, torch.cat([style, style]), vgg=vgg)
        with pytest.raises(ShapeError):
            gram_style_distance(content[:, :1], style, vgg=vgg)


class TestAdaINStyle:
    def test_equals_direct_mean_std(self, vgg, vgg_state, images):
        """Equals sum of L2 distances of channel means and population stds."""
        content, style = images
        fx, fs = _caffe_features(content, vgg_state), _caffe_features(style, vgg_state)
        want = 0.0
        for layer in ("relu1_1", "relu2_1", "relu3_1"):
            a = fx[layer].reshape(fx[layer].shape[0], -1)
            b = fs[layer].reshape(fs[layer].shape[0], -1)
            want += np.linalg.norm(a.mean(1) - b.mean(1)) + np.linalg.norm(a.std(1) - b.std(1))
        assert float(adain_style_distance(content, style, vgg=vgg)) == pytest.approx(want, rel=1e-4)


class TestContent:
    def test_equals_direct_feature_mse(self, vgg, vgg_state, images):
        """Equals the mean squared relu3_2 difference computed from the raw weights."""
        content, _ = images
        g = torch.Generator().manual_seed(0)
        noisy = (content + 0.1 * torch.randn(content.shape, generator=g)).clamp(0, 1)
        want = ((_caffe_features(noisy, vgg_state)["relu3_2"] - _caffe_features(content, vgg_state)["relu3_2"]) ** 2).mean()
        assert float(content_distance(noisy, content, vgg=vgg)) == pytest.approx(want, rel=1e-4)
        assert float(content_distance(content, content, vgg=vgg)) == pytest.approx(0.0, abs=1e-6)

    def test_size_mismatch_raises(self, vgg):
        """A content image of another size raises (no silent resize in the function)."""
        with pytest.raises(ShapeError):
            content_distance(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 40), vgg=vgg)

    def test_compute_rows_and_version(self, weights_dir, images):
        """compute() gives content/style rows whose version names the backbone."""
        content, style = images
        rows = compute(["content", "gram-style", "adain-style", "colorfulness"], content, contents=content, styles=style)
        values = {r["name"]: r for r in rows}
        assert values["content"]["value"] == pytest.approx(0.0, abs=1e-6)
        assert values["gram-style"]["value"] > 0
        assert values["gram-style"]["version"] in ("1.0+caffe", "1.0+torchvision")
        assert values["gram-style"]["version"] == get_metric("gram-style").version


class TestColour:
    def test_colorfulness_formula(self):
        """Matches the Hasler-Suesstrunk formula in numpy; gray is 0, pure red 85.53."""
        g = torch.Generator().manual_seed(0)
        x = torch.rand(2, 3, 20, 24, generator=g)
        for i in range(2):
            r, gg, b = (x[i].double().numpy() * 255)
            rg, yb = r - gg, 0.5 * (r + gg) - b
            want = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
            assert float(colorfulness(x)[i]) == pytest.approx(want, rel=1e-5)
        assert float(colorfulness(torch.full((1, 3, 8, 8), 0.4))) == pytest.approx(0.0, abs=1e-9)
        red = torch.zeros(1, 3, 8, 8)
        red[:, 0] = 1
        assert float(colorfulness(red)) == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-6)

    def test_lab_matches_skimage(self):
        """rgb_to_lab equals skimage.color.rgb2lab."""
        skc = pytest.importorskip("skimage.color")
        x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
        want = skc.rgb2lab(x[0].permute(1, 2, 0).double().numpy())
        got = rgb_to_lab(x.double())[0].permute(1, 2, 0).numpy()
        assert np.abs(got - want).max() < 1e-4

    def test_hist_distance_matches_numpy(self, images):
        """Hellinger distance of np.histogramdd Lab histograms."""
        skc = pytest.importorskip("skimage.color")
        content, style = images

        def hist(img):
            lab = skc.rgb2lab(img[0].permute(1, 2, 0).double().numpy()).reshape(-1, 3)
            h, _ = np.histogramdd(lab, bins=HIST_BINS, range=[(0, 100), (-128, 128), (-128, 128)])
            return h.ravel() / h.sum()

        want = np.sqrt(max(0.0, 1 - np.sqrt(hist(content) * hist(style)).sum()))
        got = float(color_hist_distance(content, style))
        assert got == pytest.approx(want, abs=1e-6)
        assert 0 < got <= 1
        assert float(color_hist_distance(content, content.flip(-1))) == pytest.approx(0.0, abs=1e-7)


class TestEdges:
    def test_matches_scipy_sobel_correlation(self, images):
        """Equals the Pearson correlation of scipy Sobel magnitudes (valid region)."""
        content, _ = images
        g = torch.Generator().manual_seed(0)
        blurred = F.avg_pool2d(content, 3, stride=1, padding=1, count_include_pad=False)
        out = (blurred + 0.05 * torch.randn(content.shape, generator=g)).clamp(0, 1)

        def mag(img):
            arr = img[0].double().numpy()
            y = 0.298936021293775 * arr[0] + 0.587043074451121 * arr[1] + 0.114020904255103 * arr[2]
            return np.hypot(ndimage.sobel(y, axis=0), ndimage.sobel(y, axis=1))[1:-1, 1:-1]

        want = np.corrcoef(mag(out).ravel(), mag(content).ravel())[0, 1]
        got = float(edge_preservation(out, content))
        assert got == pytest.approx(want, abs=1e-6)
        assert 0 < got < 1

    def test_flat_image_gives_zero_and_bad_input_raises(self):
        """No edges gives 0 (documented); a size mismatch raises."""
        x = torch.rand(1, 3, 16, 16)
        assert float(edge_preservation(torch.full_like(x, 0.5), x)) == 0.0
        with pytest.raises(ShapeError):
            edge_preservation(x, torch.rand(1, 3, 16, 18))


def test_modules_equal_functions(weights_dir, images):
    """Each nn.Module form returns its function's values."""
    from stylecore.metrics.color import Colorfulness, ColorHistDistance
    from stylecore.metrics.content import ContentDistance
    from stylecore.metrics.edges import EdgePreservation
    from stylecore.metrics.gram import AdaINStyleDistance, GramStyleDistance

    content, style = images
    noisy = (content * 0.9 + 0.05).clamp(0, 1)
    assert torch.equal(GramStyleDistance()(content, style), gram_style_distance(content, style))
    assert torch.equal(AdaINStyleDistance()(content, style), adain_style_distance(content, style))
    assert torch.equal(ContentDistance()(noisy, content), content_distance(noisy, content))
    assert torch.equal(Colorfulness()(content), colorfulness(content))
    assert torch.equal(ColorHistDistance()(content, style), color_hist_distance(content, style))
    assert torch.equal(EdgePreservation()(noisy, content), edge_preservation(noisy, content))
