"""A corrupt or missing weight file fails the run by name; defaults never depend on a worker's disk."""

from __future__ import annotations

import shutil

import pytest
import torch

import stylecore.models.autoencoder as autoencoder
import stylecore.weights.registry as registry
from stylecore.methods import get_method, stylize, stylize_grid
from stylecore.methods.wct import PAPER_LEVELS
from stylecore.models.autoencoder import available_levels
from stylecore.weights import ChecksumMismatchError, MissingWeightsError

CORRUPT = "wct_vgg_normalised_conv1_1.pth"


@pytest.fixture
def weights_copy(weights_dir, tmp_path, monkeypatch):
    """A private copy of the real weight folder; caches of verified files and loaded models start empty."""
    folder = tmp_path / "weights"
    folder.mkdir()
    for path in weights_dir.glob("*.pth"):
        shutil.copyfile(path, folder / path.name)
    monkeypatch.setenv("STYLECORE_WEIGHTS_DIR", str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "_VERIFIED", {})
    monkeypatch.setattr(autoencoder, "_CACHE", {})
    return folder


def _flip_one_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _images():
    gen = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, 32, 32, generator=gen), torch.rand(1, 3, 32, 32, generator=gen)


class TestCorruptWeights:
    def test_default_wct_fails_naming_the_corrupt_file(self, weights_copy):
        """One flipped byte in the relu1_1 encoder: default WCT raises, it does not run relu3_1 and relu2_1 only."""
        _flip_one_byte(weights_copy / CORRUPT)
        content, style = _images()
        with pytest.raises(ChecksumMismatchError, match=CORRUPT):
            stylize("wct", content, style)
        with pytest.raises(ChecksumMismatchError, match=CORRUPT):
            stylize_grid("wct", [content], [style])

    def test_corrupt_file_is_not_reported_absent(self, weights_copy):
        _flip_one_byte(weights_copy / CORRUPT)
        with pytest.raises(ChecksumMismatchError, match=CORRUPT):
            available_levels("vgg19-wct")

    def test_explicit_levels_that_avoid_the_file_still_run(self, weights_copy):
        """Levels given in the parameters run exactly; the corrupt relu1_1 file is never read."""
        _flip_one_byte(weights_copy / CORRUPT)
        content, style = _images()
        result = stylize_grid("wct", [content], [style], params={"levels": "3,2"})
        assert result.provenance["levels"] == ["relu3_1", "relu2_1"]
        assert result.provenance["departs_from_paper"] == ""

    def test_missing_file_fails_instead_of_dropping_a_level(self, weights_copy):
        (weights_copy / CORRUPT).unlink()
        content, style = _images()
        with pytest.raises(MissingWeightsError, match=CORRUPT):
            stylize("wct", content, style)

    def test_intact_copy_runs_every_default_level(self, weights_copy):
        content, style = _images()
        result = stylize_grid("wct", [content], [style])
        assert result.provenance["levels"] == ["relu3_1", "relu2_1", "relu1_1"]
        assert "relu5_1" in result.provenance["departs_from_paper"]
        assert set(result.provenance["weights"]) == {
            f"wct-{kind}-relu{k}_1" for kind in ("encoder", "decoder") for k in (1, 2, 3)
        }


class TestPublishedDefaults:
    def test_adain_default_is_relu4_1_on_the_distilled_family(self, weights_dir):
        """Huang & Belongie (2017) run AdaIN at relu4_1; the default family has that level offline."""
        content, style = _images()
        result = stylize_grid("adain", [content], [style])
        assert result.provenance["family"] == "vgg19-cd16x"
        assert result.provenance["levels"] == ["relu4_1"]
        assert result.provenance["departs_from_paper"] == ""
        assert "approximation of VGG19" in result.provenance["notes"]

    def test_wct_follows_li_et_al_where_the_family_has_the_levels(self):
        assert PAPER_LEVELS.on("vgg19-cd16x") == [5, 4, 3, 2, 1]
        assert PAPER_LEVELS.on("vgg19-wct") == [3, 2, 1]
        assert PAPER_LEVELS.departure("vgg19-cd16x") == ""

    def test_defaults_are_described_for_the_admin(self):
        text = get_method("adain").describe_defaults()
        assert "vgg19-cd16x: relu4_1 (as published)" in text
        assert "vgg19-wct: relu3_1 (departs from the paper" in text
