"""Applying generators: the published CycleGAN file, trained and conditional checkpoints."""

from __future__ import annotations

import pytest
import torch

from stylecore._checks import ShapeError
from stylecore.gan import (
    ConditionalResnetGenerator,
    ResnetGenerator,
    generator_from_state_dict,
)
from stylecore.gan.inference import (
    clear_generator_cache,
    cyclegan_transfer,
    load_generator,
)
from stylecore.gan.networks import from_gan_range, to_gan_range
from stylecore.gan.train import CONDITIONAL_FORMAT
from stylecore.io import load_image


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
    clear_generator_cache()


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


@pytest.mark.weights
class TestPublishedGenerator:
    def test_strict_load_of_official_format_file(self, weights_dir):
        """vintagify's G_A2B (official layout, ngf 64, 9 blocks, affine instance norm) loads strictly."""
        sd = torch.load(weights_dir / "vintagify_cyclegan_G_A2B.pth", map_location="cpu",
                        weights_only=True)
        g = generator_from_state_dict(sd)
        assert g.config["ngf"] == 64 and g.config["n_blocks"] == 9
        assert g.config["norm"] == "instance-affine"
        assert set(g.state_dict()) == set(sd)  # strict: no key missing or unexpected
        # A truncated file must not load silently.
        broken = dict(sd)
        del broken["model.26.bias"]
        with pytest.raises(ValueError, match="model.26.bias"):
            generator_from_state_dict(broken)

    def test_runs_on_a_sample_photo(self, weights_dir, samples_dir):
        """The manifest's check: output correlates ~0.99 with the photo, yet differs from it."""
        photo = load_image(samples_dir / "content" / "chicago.jpg", max_side=128)
        out = cyclegan_transfer(photo, "cyclegan-vintagify-a2b")
        assert out.shape == photo.shape and 0 <= out.min() and out.max() <= 1
        assert _corr(out, photo) > 0.97
        assert (out - photo).abs().mean() > 0.01
        # The [-1, 1] convention matters: feeding [0, 1] directly is measurably worse.
        g = load_generator("cyclegan-vintagify-a2b").net
        with torch.no_grad():
            wrong = from_gan_range(g(photo[..., :84, :128]))
        assert _corr(wrong, photo[..., :84, :128]) < _corr(out[..., :84, :128], photo[..., :84, :128])

    def test_cached_per_process(self, weights_dir):
        assert load_generator("cyclegan-vintagify-a2b") is load_generator("cyclegan-vintagify-a2b")


class TestCheckpoints:
    def test_plain_file_matches_direct_call(self, tmp_path):
        torch.manual_seed(0)
        g = ResnetGenerator(ngf=4, n_blocks=2).eval()
        torch.save(g.state_dict(), tmp_path / "G.pth")
        x = torch.rand(2, 3, 24, 20)
        with torch.no_grad():
            ref = from_gan_range(g(to_gan_range(x)))
        torch.testing.assert_close(cyclegan_transfer(x, tmp_path / "G.pth"), ref)

    def test_odd_sizes_and_dtype(self, tmp_path):
        torch.save(ResnetGenerator(ngf=4, n_blocks=1).state_dict(), tmp_path / "G.pth")
        x = torch.rand(1, 3, 27, 13, dtype=torch.float64)
        y = cyclegan_transfer(x, tmp_path / "G.pth")
        assert y.shape == x.shape and y.dtype == torch.float64

    def test_conditional_file(self, tmp_path):
        torch.manual_seed(0)
        g = ConditionalResnetGenerator(3, ngf=4, n_blocks=1)
        with torch.no_grad():
            for p in g.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        torch.save({"format": CONDITIONAL_FORMAT, "domains": ["photo", "chinese", "japanese"],
                    "config": g.config, "state_dict": g.state_dict()}, tmp_path / "c.pt")
        x = torch.rand(1, 3, 16, 16)
        ink = cyclegan_transfer(x, tmp_path / "c.pt", target_culture="chinese")
        ukiyoe = cyclegan_transfer(x, tmp_path / "c.pt", target_culture="japanese")
        with torch.no_grad():
            ref = from_gan_range(g.eval()(to_gan_range(x), torch.tensor([2])))
        torch.testing.assert_close(ukiyoe, ref)
        assert (ink - ukiyoe).abs().mean() > 1e-3
        with pytest.raises(ValueError, match="Did you mean 'japanese'"):
            cyclegan_transfer(x, tmp_path / "c.pt", target_culture="japan")
        with pytest.raises(ValueError, match="pass target_culture"):
            cyclegan_transfer(x, tmp_path / "c.pt")

    def test_errors(self, tmp_path):
        torch.save(ResnetGenerator(ngf=4, n_blocks=1).state_dict(), tmp_path / "G.pth")
        with pytest.raises(ValueError, match="single-direction"):
            cyclegan_transfer(torch.rand(1, 3, 8, 8), tmp_path / "G.pth", target_culture="x")
        with pytest.raises(FileNotFoundError, match="nope.pth"):
            cyclegan_transfer(torch.rand(1, 3, 8, 8), tmp_path / "nope.pth")
        with pytest.raises(ValueError, match="unknown weights"):
            cyclegan_transfer(torch.rand(1, 3, 8, 8), "cyclegan-no-such-name")
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            cyclegan_transfer(torch.rand(1, 3, 8, 8) * 2, tmp_path / "G.pth")
        with pytest.raises(ShapeError):
            cyclegan_transfer(torch.rand(3, 8, 8), tmp_path / "G.pth")
        (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
        with pytest.raises(ValueError, match="junk.pth"):
            cyclegan_transfer(torch.rand(1, 3, 8, 8), tmp_path / "junk.pth")
