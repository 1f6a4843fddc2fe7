"""FID / KID / ArtFID formulas against scipy and pytorch-fid, and their availability."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from stylecore.metrics import compute, compute_set
from stylecore.metrics.distribution import (
    fid_from_features,
    frechet_distance,
    kid_from_features,
)


def _features(seed: int, n: int, d: int = 8, shift: float = 0.0) -> torch.Tensor:
    g = np.random.default_rng(seed)
    mix = g.normal(size=(d, d))
    return torch.from_numpy(g.normal(size=(n, d)) @ mix + shift)


def _fid_scipy(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def _mmd2_numpy(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], x.shape[0]
    k = lambda p, q: (p @ q.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    )


class TestFID:
    def test_matches_scipy_sqrtm(self):
        """Equals the sqrtm-based formula on fixed random features."""
        a, b = _features(0, 60), _features(1, 50, shift=0.5)
        want = _fid_scipy(a.numpy(), b.numpy())
        assert fid_from_features(a, b) == pytest.approx(want, rel=1e-8)
        assert want > 1

    @pytest.mark.filterwarnings("ignore::DeprecationWarning")
    def test_matches_pytorch_fid(self):
        """Equals pytorch-fid's calculate_frechet_distance on the same statistics."""
        fid_score = pytest.importorskip("pytorch_fid.fid_score")
        a, b = _features(2, 40).numpy(), _features(3, 45, shift=-0.3).numpy()
        want = fid_score.calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
        assert fid_from_features(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(want, rel=1e-6)

    def test_singular_covariances(self):
        """Fewer samples than dimensions (singular covariances) still give the scipy value."""
        a, b = _features(4, 5, d=12), _features(5, 6, d=12, shift=1.0)
        assert fid_from_features(a, b) == pytest.approx(_fid_scipy(a.numpy(), b.numpy()), rel=1e-5)

    def test_bad_input(self):
        """One row, NaN, mismatched sizes raise."""
        with pytest.raises(ValueError, match="N >= 2"):
            fid_from_features(torch.zeros(1, 4), torch.zeros(3, 4))
        with pytest.raises(ValueError, match="NaN"):
            fid_from_features(torch.full((3, 4), float("nan")), torch.zeros(3, 4))
        with pytest.raises(ValueError):
            frechet_distance(torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3))


class TestKID:
    def test_full_set_matches_numpy(self):
        """With one subset of every row, KID is the unbiased MMD^2 of the sets."""
        a, b = _features(6, 30), _features(7, 30, shift=0.4)
        res = kid_from_features(a, b)
        assert res.n_subsets == 1 and res.subset_size == 30
        assert res.mean == pytest.approx(_mmd2_numpy(a.numpy(), b.numpy()), rel=1e-10)

    def test_subsets_match_numpy(self):
        """Random subsets drawn from the same seed give the numpy mean."""
        a, b = _features(8, 40), _features(9, 35, shift=0.2)
        res = kid_from_features(a, b, subset_size=20, n_subsets=5, rng=123)
        g = np.random.default_rng(123)
        vals = []
        for _ in range(5):
            ia, ib = g.choice(40, 20, replace=False), g.choice(35, 20, replace=False)
            vals.append(_mmd2_numpy(a.numpy()[ia], b.numpy()[ib]))
        assert res.mean == pytest.approx(np.mean(vals), rel=1e-10)
        assert res.std == pytest.approx(np.std(vals), rel=1e-8)


class TestComputeSet:
    def test_unavailable_offline(self, tmp_path, monkeypatch):
        """Without the Inception weights, FID/KID/ArtFID rows say which file is missing."""
        monkeypatch.setenv("STYLECORE_WEIGHTS_DIR", str(tmp_path))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        monkeypatch.setenv("TORCH_HOME", str(tmp_path))
        x = torch.rand(3, 3, 32, 32)
        rows = compute_set(["fid", "kid", "artfid"], x, x.flip(-1), contents=x)
        assert [r["value"] for r in rows] == [None, None, None]
        reason = (
            "unavailable: pt_inception-2015-12-05-6726825d.pth "
            "(fetch with: python -m stylecore weights fetch inception-fid)"
        )
        if pytest.importorskip("pytorch_fid"):
            assert rows[0]["unavailable"] == reason
        assert "alexnet-owt-7be5be79.pth" in rows[2]["unavailable"]

    def test_custom_features_path(self):
        """With a feature extractor given, FID/KID equal the feature-level functions."""
        def feats(x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)

        g = torch.Generator().manual_seed(0)
        a = torch.rand(6, 3, 16, 16, generator=g)
        b = (torch.rand(5, 3, 16, 16, generator=g) * 0.5)
        rows = compute_set(["fid", "kid"], [a[i : i + 1] for i in range(6)], b, feature_extractor=feats, batch_size=4)
        fa, fb = feats(a).double(), feats(b).double()
        assert rows[0]["value"] == pytest.approx(fid_from_features(fa, fb), rel=1e-9)
        assert rows[1]["value"] == pytest.approx(kid_from_features(fa, fb, rng=0).mean, rel=1e-9)
        assert rows[0]["version"].endswith("+custom-features")
        assert rows[0]["n_images"] == 6 and rows[0]["n_references"] == 5

    def test_bad_input(self):
        """Too few images, missing contents for ArtFID and per-image names raise."""
        x = torch.rand(2, 3, 16, 16)
        with pytest.raises(ValueError, match="at least 2"):
            compute_set("fid", x[:1], x)
        with pytest.raises(ValueError, match="needs contents"):
            compute_set("artfid", x, x)
        with pytest.raises(ValueError, match="per-image"):
            compute_set("ssim", x, x)
        with pytest.raises(ValueError, match="set metric"):
            compute("fid", x, contents=x)


def test_fid_inception_graph_shapes():
    """The FID Inception graph builds without downloads and gives 2048-d features."""
    pytest.importorskip("pytorch_fid")
    from stylecore.models.inception import FIDInception, build_fid_inception

    net = FIDInception(build_fid_inception()).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 48, 64))
    assert out.shape == (2, 2048) and torch.isfinite(out).all()
    keys = set(build_fid_inception().state_dict())
    assert "Mixed_7c.branch_pool.conv.weight" in keys and "fc.weight" in keys
