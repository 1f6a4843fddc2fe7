"""CycleGAN networks, losses and history pool."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stylecore._checks import ShapeError
from stylecore.gan import (
    ConditionalResnetGenerator,
    GANLoss,
    ImagePool,
    PatchDiscriminator,
    ResnetGenerator,
    discriminator_loss,
    generator_from_state_dict,
    generator_loss,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # Small convolutions on a loaded 2-core machine spend most of their time in
    # OpenMP spin-waits with 2 threads; 1 thread is ~100x faster here.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class TestResnetGenerator:
    def test_official_parameter_counts(self):
        """The official code reports 11.378 M (G, 9 blocks) and 2.765 M (D) parameters."""
        assert round(_n_params(ResnetGenerator()) / 1e6, 3) == 11.378
        assert round(_n_params(PatchDiscriminator()) / 1e6, 3) == 2.765

    def test_official_key_layout(self):
        """Convs sit at model.1/4/7, blocks at 10–18 (block.1/.5), upsampling at 19/22, out at 26."""
        keys = set(ResnetGenerator().state_dict())
        expected = {f"model.{i}.{p}" for i in (1, 4, 7, 19, 22, 26) for p in ("weight", "bias")}
        expected |= {f"model.{b}.block.{i}.{p}" for b in range(10, 19) for i in (1, 5)
                     for p in ("weight", "bias")}
        assert keys == expected

    @pytest.mark.parametrize("size", [(32, 32), (36, 44)])
    def test_shape_and_range(self, size):
        g = ResnetGenerator(ngf=4, n_blocks=2)
        y = g(torch.rand(2, 3, *size) * 2 - 1)
        assert y.shape == (2, 3, *size)
        assert y.abs().max() <= 1

    def test_bad_input(self):
        g = ResnetGenerator(ngf=4, n_blocks=1)
        with pytest.raises(ShapeError, match="input must have shape"):
            g(torch.rand(1, 4, 16, 16))
        with pytest.raises(TypeError):
            g(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
        with pytest.raises(ValueError, match="norm"):
            ResnetGenerator(norm="group")

    @pytest.mark.parametrize("norm,dropout", [("instance", False), ("instance-affine", True)])
    def test_state_dict_round_trip(self, norm, dropout):
        torch.manual_seed(0)
        g = ResnetGenerator(ngf=4, n_blocks=3, norm=norm, dropout=dropout).eval()
        h = generator_from_state_dict(g.state_dict()).eval()
        assert h.config == g.config
        x = torch.rand(1, 3, 16, 16)
        torch.testing.assert_close(h(x), g(x))

    def test_from_state_dict_rejects_other_layouts(self):
        with pytest.raises(ValueError, match="not a CycleGAN ResnetGenerator"):
            generator_from_state_dict({"conv.weight": torch.zeros(1)})
        sd = ResnetGenerator(ngf=4, n_blocks=2).state_dict()
        sd["model.26.weight"] = torch.zeros(3, 5, 7, 7)
        with pytest.raises(ValueError, match="official layout"):
            generator_from_state_dict(sd)

    def test_old_instance_norm_running_stats_dropped(self):
        """Files from PyTorch < 0.4 carry instance-norm running stats; the official loader drops them."""
        sd = dict(ResnetGenerator(ngf=4, n_blocks=1).state_dict())
        sd["model.2.running_mean"] = torch.zeros(4)
        sd["model.2.running_var"] = torch.ones(4)
        assert generator_from_state_dict(sd).config["norm"] == "instance"


class TestPatchDiscriminator:
    def test_official_output_size(self):
        """A 256×256 image gives the 30×30 patch map of the CycleGAN discriminator."""
        assert PatchDiscriminator(ndf=8)(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)

    def test_receptive_field_is_70(self):
        """Each logit depends on exactly a 70×70 input patch (hence '70×70 PatchGAN')."""
        torch.manual_seed(0)
        d = PatchDiscriminator(ndf=4, norm="none")
        x = torch.rand(1, 3, 160, 160, requires_grad=True)
        out = d(x)
        out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
        nz = x.grad.abs().sum(1)[0].nonzero()
        extent = (nz.max(0).values - nz.min(0).values + 1).tolist()
        assert extent == [70, 70]

    def test_spectral_norm_bounds_sigma(self):
        """After power iterations each conv's largest singular value is ≈ 1 (Miyato et al. 2018)."""
        torch.manual_seed(0)
        d = PatchDiscriminator(ndf=4, spectral_norm=True, norm="none")
        x = torch.rand(1, 3, 64, 64)
        for _ in range(30):
            d(x)
        convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == 5
        for conv in convs:
            sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
            assert sigma == pytest.approx(1.0, abs=0.05)
        raw = PatchDiscriminator(ndf=4, norm="none").model[0].weight.detach().flatten(1)
        assert torch.linalg.matrix_norm(raw, ord=2) != pytest.approx(1.0, abs=0.05)

    def test_class_head(self):
        src, cls = PatchDiscriminator(ndf=4, n_classes=3)(torch.zeros(2, 3, 64, 64))
        assert src.shape == (2, 1, 6, 6) and cls.shape == (2, 3)


class TestConditionalGenerator:
    def test_label_changes_output(self):
        torch.manual_seed(0)
        g = ConditionalResnetGenerator(3, ngf=4, n_blocks=1)
        with torch.no_grad():
            for p in g.parameters():  # untrained CIN scales are all 1: make domains differ
                p.add_(torch.randn_like(p) * 0.1)
        x = torch.rand(1, 3, 16, 16) * 2 - 1
        y0, y1 = g(x, torch.tensor([0])), g(x, torch.tensor([1]))
        assert (y0 - y1).abs().mean() > 1e-3
        torch.testing.assert_close(g(x, torch.tensor([[0.0, 1.0, 0.0]])), y1)

    def test_bad_labels(self):
        g = ConditionalResnetGenerator(3, ngf=4, n_blocks=1)
        x = torch.zeros(2, 3, 16, 16)
        with pytest.raises(ValueError, match=r"in \[0, 2\]"):
            g(x, torch.tensor([0, 3]))
        with pytest.raises(ValueError, match="label must be"):
            g(x, torch.zeros(2, 4))
        with pytest.raises(ValueError, match="entries for a batch"):
            g(x, torch.tensor([1]))


class TestLosses:
    def test_lsgan_matches_mse(self):
        real, fake = torch.randn(2, 1, 5, 5), torch.randn(2, 1, 5, 5)
        ref_d = F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))
        torch.testing.assert_close(discriminator_loss(real, fake, "lsgan"), ref_d)
        torch.testing.assert_close(generator_loss(fake, "lsgan"), F.mse_loss(fake, torch.ones_like(fake)))

    def test_nonsaturating_matches_bce(self):
        real, fake = torch.randn(7), torch.randn(7)
        bce = F.binary_cross_entropy_with_logits
        ref = bce(real, torch.ones(7)) + bce(fake, torch.zeros(7))
        torch.testing.assert_close(discriminator_loss(real, fake, "nonsaturating"), ref)
        torch.testing.assert_close(generator_loss(fake, "nonsaturating"), bce(fake, torch.ones(7)))

    def test_hinge_values(self):
        real, fake = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([-2.0, 0.5, 1.0])
        # relu(1 - real) = [0, 1, 2] → 1; relu(1 + fake) = [0, 1.5, 2] → 7/6
        assert discriminator_loss(real, fake, "hinge").item() == pytest.approx(1 + 7 / 6)
        assert generator_loss(fake, "hinge").item() == pytest.approx(0.5 / 3)

    @pytest.mark.parametrize("mode", ["lsgan", "hinge", "nonsaturating"])
    def test_gradcheck_and_module(self, mode):
        real = torch.randn(6, dtype=torch.float64, requires_grad=True)
        fake = torch.randn(6, dtype=torch.float64, requires_grad=True)
        # The functions compute in float32; check gradients on a float64 copy of the formula
        # by comparing autograd against finite differences at loose tolerance.
        assert torch.autograd.gradcheck(lambda f: generator_loss(f, mode).double(), (fake,),
                                        eps=1e-3, atol=1e-3, rtol=1e-2)
        assert torch.autograd.gradcheck(lambda r, f: discriminator_loss(r, f, mode).double(),
                                        (real, fake), eps=1e-3, atol=1e-3, rtol=1e-2)
        loss = GANLoss(mode)
        assert loss(fake) == generator_loss(fake, mode)
        assert loss(fake, real) == discriminator_loss(real, fake, mode)

    def test_discriminator_prefers_correct_logits(self):
        """Every loss is lower when D scores reals high and fakes low."""
        for mode in ("lsgan", "hinge", "nonsaturating"):
            good = discriminator_loss(torch.full((4,), 1.0), torch.full((4,), -1.0), mode)
            bad = discriminator_loss(torch.full((4,), -1.0), torch.full((4,), 1.0), mode)
            assert good < bad

    def test_unknown_mode(self):
        with pytest.raises(ValueError, match="wgan"):
            generator_loss(torch.zeros(1), "wgan")


class TestImagePool:
    def test_fills_then_mixes(self):
        pool = ImagePool(3, seed=0)
        first = torch.arange(3.0).view(3, 1, 1, 1)
        torch.testing.assert_close(pool.query(first), first)
        assert len(pool) == 3
        returned_old = 0
        for i in range(200):
            new = torch.full((1, 1, 1, 1), 100.0 + i)
            out = pool.query(new)
            assert len(pool) == 3
            if out.item() != new.item():
                returned_old += 1
                assert new.item() in [im.item() for im in pool.images]
        assert 70 < returned_old < 130  # probability 1/2

    def test_size_zero_passes_through(self):
        x = torch.rand(2, 3, 4, 4, requires_grad=True)
        out = ImagePool(0).query(x)
        assert torch.equal(out, x) and not out.requires_grad

    def test_state_dict_resumes_same_choices(self):
        a = ImagePool(4, seed=1)
        for _ in range(6):
            a.query(torch.rand(2, 3, 2, 2))
        b = ImagePool(4, seed=99)
        b.load_state_dict(a.state_dict())
        x = torch.rand(5, 3, 2, 2)
        torch.testing.assert_close(a.query(x), b.query(x))
