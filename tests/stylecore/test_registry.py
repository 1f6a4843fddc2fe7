"""One registry helper behind methods, metrics and weight files."""

from __future__ import annotations

import pytest

from stylecore._registry import Registry, did_you_mean
from stylecore.methods import get_method
from stylecore.metrics import get_metric
from stylecore.weights import get_spec


@pytest.mark.parametrize("lookup,misspelt,suggested", [
    (get_method, "colr", "'color'"),
    (get_metric, "ssmi", "'ssim'"),
    (get_spec, "wct-encoder-relu1-1", "'wct-encoder-relu1_1'"),
])
def test_every_registry_suggests_the_same_way(lookup, misspelt, suggested):
    """Methods, metrics and weights raise ValueError naming the unknown entry with one suggestion format."""
    with pytest.raises(ValueError) as info:
        lookup(misspelt)
    message = str(info.value)
    assert message.startswith("unknown ") and repr(misspelt) in message
    assert " Did you mean " in message and suggested in message


def test_did_you_mean_lists_up_to_three_and_nothing_when_far():
    assert did_you_mean("ssim", ["ssim-rgb", "ms-ssim", "psnr"]) == " Did you mean 'ms-ssim' or 'ssim-rgb'?"
    assert did_you_mean("lpips", ["fid"]) == ""


def test_a_registry_discovers_its_package_and_refuses_a_clash():
    """Discovery imports the public modules of the package; a second, different entry under a name raises."""
    registry: Registry[str] = Registry("thing", "stylecore.cli")
    assert registry.names() == []  # the CLI modules register nothing here
    registry.register("a", "first")
    assert registry.register("a", "first") == "first"
    with pytest.raises(ValueError, match="a thing named 'a' is already registered"):
        registry.register("a", "second")
    with pytest.raises(ValueError, match="unknown thing 'b'. Known: a"):
        registry.get("b")
