"""ST-LPIPS against its published value and package; LPIPS through the lpips package."""

from __future__ import annotations

import copy
import sys
import types

import pytest
import torch
import torchvision

from stylecore.io import load_image
from stylecore.metrics import compute, get_metric
from stylecore.metrics.lpips import lpips_model
from stylecore.metrics.stlpips import st_lpips
from stylecore.models.stlpips_alex import STLPIPSAlex

# README of stlpips-pytorch 0.0.2: d(ex_p0, ex_ref) with net="alex",
# variant="shift_tolerant".
PUBLISHED_STLPIPS_P0_REF = 0.7777554988861084


@pytest.fixture(scope="module")
def lpips_examples(reference_dir):
    folder = reference_dir / "lpips_examples"
    return {n: load_image(folder / f"{n}.png") for n in ("ex_ref", "ex_p0", "ex_p1")}


@pytest.fixture(scope="module")
def photo(samples_dir):
    files = sorted((samples_dir / "content").glob("*.jpg")) + sorted((samples_dir / "content").glob("*.png"))
    assert len(files) >= 2
    return [load_image(f, max_side=128)[..., :80, :80] for f in files[:2]]


class TestSTLPIPS:
    def test_weights_load_strictly(self, weights_dir):
        """Every key of the shipped file maps onto the model and back."""
        state = torch.load(weights_dir / "stlpips_alex_shift_tolerant.pth", map_location="cpu", weights_only=True)
        assert set(STLPIPSAlex().state_dict()) == set(state)

    def test_published_value(self, weights_dir, lpips_examples):
        """d(ex_p0, ex_ref) equals the package README's 0.77776."""
        got = float(st_lpips(lpips_examples["ex_p0"], lpips_examples["ex_ref"]))
        assert got == pytest.approx(PUBLISHED_STLPIPS_P0_REF, abs=1e-5)
        # p1 is the patch humans judged closer to the reference.
        assert float(st_lpips(lpips_examples["ex_p1"], lpips_examples["ex_ref"])) < got

    def test_sanity_figures(self, weights_dir, photo):
        """0 when identical, monotone in noise, small for a 1-px shift, large for unrelated."""
        x, other = photo
        assert float(st_lpips(x, x)) == pytest.approx(0.0, abs=1e-6)
        g = torch.Generator().manual_seed(0)
        noise = torch.randn(x.shape, generator=g)
        dists = [float(st_lpips((x + s * noise).clamp(0, 1), x)) for s in (0.02, 0.05, 0.1, 0.2, 0.4)]
        assert all(a < b for a, b in zip(dists, dists[1:])), dists
        shifted = torch.roll(x, shifts=1, dims=-1)[..., 1:]
        shift_d = float(st_lpips(shifted, x[..., 1:]))
        assert shift_d < 0.02
        assert float(st_lpips(other, x)) > max(0.3, 50 * shift_d)

    def test_matches_package(self, weights_dir, monkeypatch):
        """Equals stlpips-pytorch's own model on random inputs."""
        for mod in ("IPython", "torchsummary"):  # imported by the package, unused here
            if mod not in sys.modules:
                try:
                    __import__(mod)
                except ImportError:
                    monkeypatch.setitem(sys.modules, mod, types.SimpleNamespace(embed=None, summary=None))
        stl = pytest.importorskip("stlpips_pytorch.stlpips")
        ref = stl.LPIPS(net="alex", variant="shift_tolerant", verbose=False)
        g = torch.Generator().manual_seed(3)
        a, b = torch.rand(2, 3, 48, 56, generator=g), torch.rand(2, 3, 48, 56, generator=g)
        with torch.no_grad():
            want = ref(a, b, normalize=True).flatten()
        assert torch.allclose(st_lpips(a, b), want, atol=1e-6)

    def test_compute_row(self, weights_dir, photo):
        """compute() reports st-lpips with its version."""
        x, c = photo
        row = compute("st-lpips", x, contents=c)[0]
        assert row["unavailable"] == "" and row["value"] == pytest.approx(float(st_lpips(x, c)), abs=1e-6)
        assert row["version"] == get_metric("st-lpips").version

    def test_bad_input(self, weights_dir):
        """Too small and mismatched images raise."""
        with pytest.raises(ValueError, match="32x32"):
            st_lpips(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
        with pytest.raises(ValueError):
            st_lpips(torch.rand(1, 3, 40, 40), torch.rand(1, 3, 40, 48))


class TestLPIPS:
    def test_unavailable_offline(self, tmp_path, monkeypatch):
        """Without the backbone file, the row says which file and how to fetch it."""
        monkeypatch.setenv("STYLECORE_WEIGHTS_DIR", str(tmp_path))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        monkeypatch.setenv("TORCH_HOME", str(tmp_path))
        x = torch.rand(2, 3, 32, 32)
        rows = compute(["lpips-alex", "lpips-vgg", "psnr"], x, contents=x * 0.9)
        by_name = {(r["index"], r["name"]): r for r in rows}
        for i in (0, 1):
            assert by_name[(i, "lpips-alex")]["value"] is None
            assert by_name[(i, "lpips-alex")]["unavailable"] == (
                "unavailable: alexnet-owt-7be5be79.pth "
                "(fetch with: python -m stylecore weights fetch alexnet-torchvision)"
            )
            assert by_name[(i, "lpips-vgg")]["unavailable"].startswith("unavailable: vgg16-397923af.pth")
            assert by_name[(i, "psnr")]["value"] is not None

    @pytest.mark.parametrize("net", ["alex", "vgg"])
    def test_agrees_with_package_loading(self, net, tmp_path, monkeypatch):
        """With a backbone file present, the offline loader equals the package's stock path.

        The backbone is randomly initialised and written to a temporary file: this
        proves the key mapping and preprocessing, not pretrained values.
        """
        lpips = pytest.importorskip("lpips")
        torch.manual_seed(0)

        # Only the convolutional part matters; building the classifiers of
        # random torchvision models would take seconds.
        def features() -> torch.nn.Sequential:
            if net == "vgg":
                return torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
            return torchvision.models.alexnet(weights=None).features

        path = tmp_path / f"{net}-backbone.pth"
        torch.save({f"features.{k}": v for k, v in features().state_dict().items()}, path)
        template = features()

        def fake_tv(pretrained=False, **kwargs):
            feats = copy.deepcopy(template)
            if pretrained:
                state = torch.load(path, weights_only=True)
                feats.load_state_dict({k[len("features."):]: v for k, v in state.items()})
            return types.SimpleNamespace(features=feats)

        # The package's constructor would download the backbone at this call.
        monkeypatch.setattr(lpips.pretrained_networks.tv, "alexnet" if net == "alex" else "vgg16", fake_tv)
        stock = lpips.LPIPS(net=net, version="0.1", verbose=False).eval()
        ours = lpips_model(net, backbone=path)
        g = torch.Generator().manual_seed(1)
        a, b = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)
        with torch.no_grad():
            want = stock(a, b, normalize=True).flatten()
            got = ours(a, b, normalize=True).flatten()
        assert torch.allclose(got, want, atol=1e-6)
        assert float(got.min()) > 0
