"""Every method on the real pretrained weights and sample images (skipped locally without them)."""

from __future__ import annotations

import json

import pytest
import torch

from stylecore.io import load_image, pad_to_multiple
from stylecore.methods import available_methods, get_method, stylize, stylize_grid
from stylecore.methods.gatys import gram_matrix
from stylecore.methods.wct import wct
from stylecore.models.autoencoder import available_levels, load_decoder, load_encoder
from stylecore.models.vgg_caffe import caffe_vgg19

SIZE = 128
GATYS = {"iterations": 10}  # tiny, at 64 px, for test speed; the default is 200
# Output-to-style Gram distance must be below this fraction of the content's. Colour
# transfer and fusion only move colour / blend features, so their margin is smaller.
GRAM_RATIO = {"color": 0.9, "fusion": 0.9, "adain": 0.8, "feature-match": 0.8, "wct": 0.5, "arbitrary": 0.6,
              "gatys": 0.6, "wct/cd16x": 0.5, "adain/cd16x": 0.8}


@pytest.fixture(scope="module")
def images(weights_dir, samples_dir):
    content = load_image(samples_dir / "content" / "chicago.jpg", max_side=SIZE)
    style = load_image(samples_dir / "style" / "western" / "starry_night.jpg", max_side=SIZE)
    other = load_image(samples_dir / "style" / "japanese" / "hokusai_wave.jpg", max_side=SIZE)
    return content, style, other


@pytest.fixture(scope="module")
def vgg(weights_dir):
    return caffe_vgg19()


def _gram_distance(vgg, a: torch.Tensor, b: torch.Tensor) -> float:
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    fa, fb = vgg(a, layers), vgg(b, layers)
    return sum(float((gram_matrix(fa[k]) - gram_matrix(fb[k])).square().sum().sqrt()
                     / gram_matrix(fb[k]).square().sum().sqrt()) for k in layers)  # fmt: skip


def _content_distance(vgg, a: torch.Tensor, content: torch.Tensor) -> float:
    fa, fc = vgg(a, ["relu3_2"])["relu3_2"], vgg(content, ["relu3_2"])["relu3_2"]
    return float((fa - fc).norm() / fc.norm())


def _half(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True).clamp(0, 1)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / (a - b).square().mean()))


class TestAutoencoders:
    @pytest.mark.parametrize(("family", "level", "floor"), [("vgg19-wct", 3, 25.0), ("vgg19-cd16x", 3, 25.0),
                                                             ("vgg19-cd16x", 5, 15.0)])  # fmt: skip
    def test_round_trip_psnr(self, images, family, level, floor):
        content = images[0]
        x, size = pad_to_multiple(content, 2 ** (level - 1))
        with torch.inference_mode():
            out = load_decoder(family, level)(load_encoder(family, level)(x))[..., : size[0], : size[1]]
        assert _psnr(out, content) >= floor

    def test_offline_levels(self, weights_dir):
        assert available_levels("vgg19-wct")[:3] == [1, 2, 3]
        assert available_levels("vgg19-cd16x") == [1, 2, 3, 4, 5]

    def test_cached_per_device(self, weights_dir):
        assert load_encoder("vgg19-wct", 2) is load_encoder("vgg19-wct", 2)

    def test_random_weights_would_fail(self, images):
        # The PSNR floor is meaningful: an untrained decoder gives far less.
        torch.manual_seed(0)
        enc = load_encoder("vgg19-wct", 3)
        dec = type(load_decoder("vgg19-wct", 3))(3, {1: 64, 2: 128, 3: 256})
        x, _ = pad_to_multiple(images[0], 4)
        with torch.inference_mode():
            assert _psnr(dec(enc(x))[..., : images[0].shape[-2], :], images[0]) < 15


@pytest.fixture(scope="module")
def outputs(images):
    content, style, _ = images
    out = {}
    for name in ["color", "wct", "adain", "fusion", "feature-match", "arbitrary"]:
        out[name] = stylize(name, content, style)
    out["gatys"] = stylize("gatys", _half(content), _half(style), params=GATYS)
    # Five levels at full strength (relu5_1 included) replace most of the layout by
    # design; three levels are comparable with vgg19-wct.
    out["wct/cd16x"] = stylize("wct", content, style, family="vgg19-cd16x", params={"levels": "3,2,1"})
    out["adain/cd16x"] = stylize("adain", content, style, family="vgg19-cd16x")
    return out


class TestEveryMethod:
    def test_all_registered(self):
        assert {"adain", "arbitrary", "color", "feature-match", "fusion", "gatys", "wct"} <= set(available_methods())

    @pytest.mark.parametrize("key", ["color", "wct", "adain", "fusion", "feature-match", "arbitrary", "gatys",
                                     "wct/cd16x", "adain/cd16x"])  # fmt: skip
    def test_closer_to_style_and_keeps_structure(self, images, outputs, vgg, key):
        content, style, _ = images
        if key == "gatys":
            content, style = _half(content), _half(style)
        out = outputs[key]
        assert out.shape == content.shape and 0 <= float(out.min()) and float(out.max()) <= 1
        with torch.inference_mode():
            g_out, g_content = _gram_distance(vgg, out, style), _gram_distance(vgg, content, style)
            resized_style = torch.nn.functional.interpolate(style, size=content.shape[-2:], mode="bilinear")
            d_out, d_style = _content_distance(vgg, out, content), _content_distance(vgg, resized_style, content)
        assert g_out < GRAM_RATIO[key] * g_content, (g_out, g_content)
        assert d_out < 0.9 * d_style, (d_out, d_style)

    def test_deterministic(self, images, outputs):
        content, style, _ = images
        assert torch.equal(stylize("wct", content, style), outputs["wct"])

    def test_cd16x_provenance_says_distilled(self, images):
        content, style, _ = images
        res = stylize_grid("adain", [content], [style], family="vgg19-cd16x")
        p = json.loads(json.dumps(res.provenance))
        assert "distilled approximation of VGG19" in p["notes"]
        assert set(p["weights"]) == {"cd16x-encoder-relu4_1", "cd16x-decoder-relu4_1"}
        assert all(len(v) == 64 for v in p["weights"].values())


class TestGrid:
    @pytest.mark.parametrize("name", ["wct", "adain", "fusion", "feature-match", "arbitrary"])
    def test_grid_equals_pairs(self, images, name):
        content, style, other = images
        small = [_half(x) for x in (content, style, other)]
        contents, styles = [small[0], small[1]], [small[1], small[2]]
        res = stylize_grid(name, contents, styles)
        assert sorted(res.images) == [(0, 0), (0, 1), (1, 0), (1, 1)]
        for (i, j), img in res.images.items():
            ref = stylize(name, contents[i], styles[j])
            assert (img - ref).abs().max() < 2e-3, (i, j)


class TestWCTOptions:
    def test_masks_put_each_style_in_its_region(self, images):
        content = images[0][..., :64, :64]
        red = torch.zeros(1, 3, 32, 32)
        red[:, 0] = torch.rand(1, 32, 32) * 0.5 + 0.5
        blue = torch.zeros(1, 3, 32, 32)
        blue[:, 2] = torch.rand(1, 32, 32) * 0.5 + 0.5
        masks = torch.zeros(1, 2, 64, 64)
        masks[:, 0, :, :32] = 1
        masks[:, 1, :, 32:] = 1
        out = wct(content, [red, blue], masks=masks, levels=[1])
        left, right = out[..., :, :28], out[..., :, 36:]
        assert left[:, 0].mean() > left[:, 2].mean() + 0.2
        assert right[:, 2].mean() > right[:, 0].mean() + 0.2

    def test_preserve_color_keeps_content_chroma(self, images):
        from stylecore.methods._common import rgb_to_yiq

        content, style, _ = images
        out = stylize("wct", content, style, params={"preserve_color": True, "levels": "3"})
        plain = stylize("wct", content, style, params={"levels": "3"})
        chroma = lambda x: rgb_to_yiq(x)[:, 1:]  # noqa: E731
        assert (chroma(out) - chroma(content)).abs().mean() < 0.5 * (chroma(plain) - chroma(content)).abs().mean()

    def test_level_alphas_and_errors(self, images):
        content, style, _ = images
        spec = get_method("wct")
        with pytest.raises(ValueError, match="'levels'"):
            stylize("wct", content, style, params={"levels": "7"})
        with pytest.raises(ValueError, match="level_alphas"):
            stylize("wct", content, style, params={"levels": "3,2", "level_alphas": "1"})
        zero = stylize("wct", content, style, params={"levels": "3,2", "level_alphas": "0,0"})
        assert _psnr(zero, content) > 24  # alpha 0 everywhere: two round trips of the content
        assert spec.validate({"level_alphas": "1,0.5"})["level_alphas"] == "1,0.5"

    def test_missing_family_names_the_fetch_command(self, images, weights_dir):
        content, style, _ = images
        from stylecore.weights import MissingWeightsError

        with pytest.raises(MissingWeightsError, match="weights fetch"):
            stylize("adain", content, style, family="vgg19-adain")
