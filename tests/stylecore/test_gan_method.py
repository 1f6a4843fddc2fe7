"""The ``cyclegan`` entry of the methods registry (runs where the registry exists)."""

from __future__ import annotations

import pytest
import torch

from stylecore.gan import ResnetGenerator
from stylecore.gan.inference import cyclegan_transfer

methods = pytest.importorskip("stylecore.methods")
if not hasattr(methods, "stylize"):
    pytest.skip("the methods registry is not part of this checkout", allow_module_level=True)


def test_stylize_matches_cyclegan_transfer(tmp_path):
    torch.manual_seed(0)
    torch.save(ResnetGenerator(ngf=4, n_blocks=1).state_dict(), tmp_path / "G.pth")
    x = torch.rand(1, 3, 20, 24)
    out = methods.stylize("cyclegan", x, None, params={"checkpoint": str(tmp_path / "G.pth")})
    torch.testing.assert_close(out, cyclegan_transfer(x, tmp_path / "G.pth"))
    spec = methods.get_method("cyclegan")
    assert spec.needs_style is False
    assert spec.validate({})["checkpoint"] == "cyclegan-vintagify-a2b"
    with pytest.raises(ValueError, match="single-direction"):
        methods.stylize("cyclegan", x, None,
                        params={"checkpoint": str(tmp_path / "G.pth"), "target_culture": "x"})
    grid = methods.stylize_grid("cyclegan", [x], None,
                                params={"checkpoint": str(tmp_path / "G.pth")})
    assert "SHA-256" in grid.provenance["notes"] and grid.provenance["weights"] == {}
