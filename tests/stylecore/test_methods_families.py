"""Layouts of the official files that need internet (AdaIN), checked on same-layout random weights."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from stylecore.methods import stylize
from stylecore.models import autoencoder


def _official_adain_vgg() -> nn.Sequential:
    """The layer layout of pytorch-AdaIN's ``vgg_normalised.pth`` (normalised VGG19 to relu5_4)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    cin = 3
    for block, (width, convs) in enumerate([(64, 2), (128, 2), (256, 4), (512, 4), (512, 4)]):
        for _ in range(convs):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, width, 3), nn.ReLU()]
            cin = width
        if block < 4:
            layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
    return nn.Sequential(*layers)


def _official_adain_decoder() -> nn.Sequential:
    def conv(i: int, o: int, relu: bool = True) -> list[nn.Module]:
        return [nn.ReflectionPad2d(1), nn.Conv2d(i, o, 3)] + ([nn.ReLU()] if relu else [])

    up = nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Sequential(
        *conv(512, 256), up, *conv(256, 256), *conv(256, 256), *conv(256, 256), *conv(256, 128), up,
        *conv(128, 128), *conv(128, 64), up, *conv(64, 64), *conv(64, 3, relu=False),
    )  # fmt: skip


@pytest.fixture
def adain_files(tmp_path, monkeypatch):
    torch.manual_seed(0)
    vgg, dec = _official_adain_vgg(), _official_adain_decoder()
    # Small weights keep activations in a sane range through 13 random layers.
    for p in [*vgg.parameters(), *dec.parameters()]:
        p.data.mul_(0.5)
    torch.save(vgg.state_dict(), tmp_path / "vgg_normalised.pth")
    torch.save(dec.state_dict(), tmp_path / "decoder.pth")
    monkeypatch.setenv("STYLECORE_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield vgg, dec
    for key in [k for k in autoencoder._CACHE if k[1] == "vgg19-adain"]:
        del autoencoder._CACHE[key]


def test_adain_official_layout_loads_and_matches(adain_files):
    vgg, dec = adain_files
    x = torch.rand(1, 3, 32, 24)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the publisher gives no checksum: "unverified" warning
        enc = autoencoder.load_encoder("vgg19-adain", 4)
        ours_dec = autoencoder.load_decoder("vgg19-adain", 4)
    with torch.inference_mode():
        ref = vgg[:31](x)  # up to relu4_1, as pytorch-AdaIN cuts it
        assert torch.allclose(enc(x), ref, atol=1e-5)
        assert torch.allclose(ours_dec(ref), dec(ref).clamp(0, 1), atol=1e-5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = stylize("adain", x, torch.rand(1, 3, 16, 16), family="vgg19-adain")
    assert out.shape == x.shape


def test_encoder_decoder_shapes_for_every_level():
    widths = {1: 4, 2: 8, 3: 8, 4: 16, 5: 16}
    for level in range(1, 6):
        enc = autoencoder.VGGEncoder(level, widths)
        dec = autoencoder.VGGDecoder(level, widths)
        x = torch.rand(1, 3, 32, 48)
        assert dec(enc(x)).shape == x.shape
    with pytest.raises(ValueError, match="level"):
        autoencoder.VGGEncoder(6, widths)
