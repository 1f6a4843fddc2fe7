"""Feature-transform maths: whitening, colouring, AdaIN, style swap, Gram matrices (no weights needed)."""

from __future__ import annotations

import pytest
import torch

from stylecore.methods.adain import adain_features, channel_stats
from stylecore.methods.feature_match import style_patches, style_swap
from stylecore.methods.fusion import fuse_features
from stylecore.methods.gatys import GramLoss, gram_matrix
from stylecore.methods.wct import (
    colour,
    feature_stats,
    transform_matrix,
    wct_features,
    whiten,
)


def _correlated(seed: int, c: int = 16, n: int = 4096, scale: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g, dtype=torch.float64)
    base = torch.randn(1, c, n, generator=g, dtype=torch.float64)
    return (mix @ base) * scale + torch.randn(1, c, 1, generator=g, dtype=torch.float64) * 5


def _cov(f: torch.Tensor) -> torch.Tensor:
    f = f.flatten(2)[0]
    fc = f - f.mean(1, keepdim=True)
    return fc @ fc.T / (f.shape[1] - 1)


class TestWhitenColour:
    def test_whitened_covariance_is_identity(self):
        f = _correlated(0)
        w = whiten(f)
        assert (_cov(w) - torch.eye(16, dtype=w.dtype)).abs().max() <= 1e-3
        assert w.mean(-1).abs().max() <= 1e-9

    def test_coloured_covariance_equals_style(self):
        fc, fs = _correlated(0), _correlated(1, scale=0.7)
        out = wct_features(fc, fs)
        assert (_cov(out) - _cov(fs)).abs().max() <= 1e-3 * _cov(fs).abs().max()
        assert torch.allclose(out.mean(-1), fs.mean(-1), atol=1e-9)

    def test_relu_like_rank_deficient_features_stay_finite(self):
        f = _correlated(2).clamp_min(0)
        f[:, 3] = 0  # a dead channel, as ReLU layers have
        out = wct_features(f, _correlated(3))
        assert torch.isfinite(out).all()

    def test_matches_svd_reference(self):
        # Reference: the textbook formula with SVD of the (ridged) covariance.
        fc, fs = _correlated(4, c=8, n=500), _correlated(5, c=8, n=700)
        out = wct_features(fc, fs, eps=1e-5)

        def sqrtm(cov, power):
            u, s, _ = torch.linalg.svd(cov)
            return u @ torch.diag(s**power) @ u.T

        def ridge(cov):
            return cov + 1e-5 * cov.trace() / cov.shape[0] * torch.eye(cov.shape[0], dtype=cov.dtype)

        cflat = fc[0] - fc[0].mean(1, keepdim=True)
        ref = sqrtm(ridge(_cov(fs)), 0.5) @ sqrtm(ridge(_cov(fc)), -0.5) @ cflat + fs[0].mean(1, keepdim=True)
        assert torch.allclose(out[0], ref, atol=1e-8)

    def test_transform_matrix_is_whiten_then_colour(self):
        fc, fs = _correlated(6, c=4, n=300), _correlated(7, c=4, n=300)
        sc, ss = feature_stats(fc), feature_stats(fs)
        t, b = transform_matrix(sc, ss)
        assert torch.allclose(t @ fc + b, colour(whiten(fc, sc), ss), atol=1e-9)

    def test_alpha_blends_and_batches(self):
        fc = torch.randn(3, 6, 10, 10, dtype=torch.float64)
        fs = torch.randn(1, 6, 8, 8, dtype=torch.float64) * 2
        assert torch.allclose(wct_features(fc, fs, alpha=0.0), fc)
        full = wct_features(fc, fs)
        assert torch.allclose(wct_features(fc[1:2], fs), full[1:2])
        with pytest.raises(ValueError, match="alpha"):
            wct_features(fc, fs, alpha=1.5)

    def test_bad_shape(self):
        with pytest.raises(ValueError, match=r"\(B, C, H, W\) or \(B, C, N\)"):
            feature_stats(torch.randn(4, 5))
        with pytest.raises(ValueError, match="eps"):
            feature_stats(torch.randn(1, 2, 10), eps=0)


class TestAdaIN:
    def test_output_channel_statistics_equal_the_style(self):
        fc = torch.randn(2, 8, 16, 16, dtype=torch.float64) * 4 + 1
        fs = torch.randn(1, 8, 9, 9, dtype=torch.float64) * torch.linspace(0.5, 3, 8).view(1, 8, 1, 1) + 2
        out = adain_features(fc, fs, eps=0.0)
        mo, so = channel_stats(out, eps=0.0)
        ms, ss = channel_stats(fs, eps=0.0)
        assert torch.allclose(mo, ms.expand_as(mo), atol=1e-9)
        assert torch.allclose(so, ss.expand_as(so), atol=1e-9)

    def test_default_eps_is_close(self):
        fc, fs = torch.randn(1, 4, 32, 32), torch.randn(1, 4, 32, 32) * 3
        out = adain_features(fc, fs)
        assert torch.allclose(out.std((2, 3), unbiased=False), fs.std((2, 3), unbiased=False), rtol=1e-3)


class TestStyleSwap:
    def test_identity_when_style_is_content(self):
        f = torch.rand(2, 5, 9, 7)
        assert torch.allclose(style_swap(f, f), f, atol=1e-6)

    def test_matches_brute_force(self):
        g = torch.Generator().manual_seed(0)
        fc, fs = torch.rand(1, 3, 6, 6, generator=g), torch.rand(1, 3, 5, 5, generator=g)
        patches, _ = style_patches(fs, 3)
        cpatches = torch.nn.functional.unfold(fc, 3)[0].T  # (L, 27)
        sflat = patches.flatten(1)
        ncc = (cpatches / cpatches.norm(dim=1, keepdim=True)) @ (sflat / sflat.norm(dim=1, keepdim=True)).T
        chosen = sflat[ncc.argmax(1)].T.unsqueeze(0)
        ref = torch.nn.functional.fold(chosen, (6, 6), 3) / torch.nn.functional.fold(torch.ones_like(chosen), (6, 6), 3)
        assert torch.allclose(style_swap(fc, fs), ref, atol=1e-6)

    def test_chunking_does_not_change_the_result(self):
        fc, fs = torch.rand(1, 4, 12, 11), torch.rand(1, 4, 10, 9)
        assert torch.allclose(style_swap(fc, fs, max_elements=50), style_swap(fc, fs), atol=1e-6)

    def test_too_small(self):
        with pytest.raises(ValueError, match="smaller than patch_size"):
            style_swap(torch.rand(1, 2, 2, 2), torch.rand(1, 2, 5, 5))


class TestFusionAndGram:
    def test_fuse_weights(self):
        fc = torch.zeros(1, 2, 4, 4)
        out = fuse_features(fc, [torch.ones(1, 2, 2, 2), torch.full((1, 2, 3, 3), 3.0)], weights=[1, 3])
        assert torch.allclose(out, torch.full_like(fc, 2.5))
        with pytest.raises(ValueError, match="non-negative"):
            fuse_features(fc, [fc], weights=[-1])

    def test_gram_matches_definition(self):
        f = torch.randn(2, 3, 4, 5, dtype=torch.float64)
        ref = torch.einsum("bchw,bdhw->bcd", f, f) / (3 * 4 * 5)
        assert torch.allclose(gram_matrix(f), ref)

    def test_gram_loss_gradcheck_and_needs_target(self):
        loss = GramLoss()
        with pytest.raises(RuntimeError, match="no target"):
            loss({"a": torch.rand(1, 2, 3, 3)})
        loss.set_target({"a": torch.rand(1, 2, 3, 3, dtype=torch.float64)})
        x = torch.rand(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: loss({"a": t}), (x,))
