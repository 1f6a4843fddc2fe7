"""The method registry: schema validation, dispatch, grid results, provenance."""

from __future__ import annotations

import json

import pytest
import torch

from stylecore.methods import (
    GridResult,
    MethodSpec,
    Param,
    available_methods,
    get_method,
    register_method,
    stylize,
    stylize_grid,
)


class TestParam:
    def test_coerces_strings(self):
        assert Param("float", 1.0).coerce("0.25", "alpha") == 0.25
        assert Param("int", 1).coerce("3", "steps") == 3
        assert Param("bool", False).coerce("yes", "flag") is True
        assert Param("bool", True).coerce("0", "flag") is False
        assert Param("choice", "a", choices=("a", "b")).coerce("b", "mode") == "b"

    @pytest.mark.parametrize(
        ("param", "value", "message"),
        [
            (Param("float", 1.0, minimum=0.0, maximum=1.0), 1.5, "'alpha' must be <= 1.0"),
            (Param("float", 1.0, minimum=0.0, maximum=1.0), -0.1, "'alpha' must be >= 0.0"),
            (Param("float", 1.0), "abc", "'alpha' must be a float"),
            (Param("float", 1.0), float("nan"), "'alpha' must be finite"),
            (Param("int", 1), 2.5, "'alpha' must be an integer"),
            (Param("bool", True), "maybe", "'alpha' must be a bool"),
            (Param("choice", "a", choices=("a", "b")), "c", "'alpha' must be one of a, b"),
        ],
    )
    def test_bad_values_name_the_parameter(self, param, value, message):
        with pytest.raises(ValueError, match=message):
            param.coerce(value, "alpha")

    def test_bad_kind(self):
        with pytest.raises(ValueError, match="kind"):
            Param("tensor", None)


class TestRegistry:
    def test_contract_methods_present(self):
        names = available_methods()
        assert names == sorted(names)
        assert "color" in names

    def test_unknown_method_suggests(self):
        with pytest.raises(ValueError, match="Did you mean 'color'"):
            get_method("colour")

    def test_spec_fields(self):
        spec = get_method("color")
        assert spec.name == "color" and spec.description
        assert spec.needs_style is True
        assert spec.families == ("",)
        assert set(spec.params) == {"mode", "strength"}

    def test_validate_fills_defaults_and_rejects_unknown(self):
        spec = get_method("color")
        assert spec.validate({}) == {"mode": "reinhard", "strength": 1.0}
        with pytest.raises(ValueError, match="Did you mean 'strength'"):
            spec.validate({"strenght": 1})
        with pytest.raises(ValueError, match="'strength'"):
            spec.validate({"strength": 2})

    def test_unknown_family(self):
        with pytest.raises(ValueError, match="cannot run on family"):
            stylize("color", torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), family="vgg19-wct")

    def test_duplicate_name_rejected(self):
        spec = get_method("color")
        assert register_method(spec) is spec  # re-registering the same object is harmless
        clone = MethodSpec(name="color", description="x", run=spec.run)
        with pytest.raises(ValueError, match="already registered"):
            register_method(clone)

    def test_registered_method_dispatches(self):
        calls = []

        def run(content, style, *, family, seed, gain):
            calls.append((family, seed, gain))
            return (content * gain).clamp(0, 1)

        spec = MethodSpec(
            name="test-gain",
            description="multiply by a gain",
            run=run,
            params={"gain": Param("float", 1.0, minimum=0.0, maximum=2.0)},
            needs_style=False,
        )
        register_method(spec)
        x = torch.full((1, 3, 4, 4), 0.25)
        out = stylize("test-gain", x, None, params={"gain": "2"}, seed=7)
        assert torch.allclose(out, torch.full_like(x, 0.5))
        assert calls == [("", 7, 2.0)]
        grid = stylize_grid("test-gain", [x, x], [], params={"gain": 0.5})
        assert sorted(grid.images) == [(0, 0), (1, 0)]


class TestStylize:
    def test_needs_style(self):
        with pytest.raises(ValueError, match="needs a style"):
            stylize("color", torch.rand(1, 3, 8, 8), None)

    def test_bad_content(self):
        with pytest.raises(ValueError, match="content must be in"):
            stylize("color", torch.rand(1, 3, 8, 8) * 3, torch.rand(1, 3, 8, 8))

    def test_grid_result_and_provenance_json(self):
        contents = [torch.rand(1, 3, 8, 8), torch.rand(1, 3, 10, 6)]
        styles = [torch.rand(1, 3, 8, 8), torch.rand(1, 3, 5, 5), torch.rand(1, 3, 7, 9)]
        res = stylize_grid("color", contents, styles, params={"mode": "histogram"}, seed=3)
        assert isinstance(res, GridResult)
        assert sorted(res.images) == [(i, j) for i in range(2) for j in range(3)]
        for (i, j), img in res.images.items():
            assert img.device.type == "cpu"
            assert img.shape == contents[i].shape
            ref = stylize("color", contents[i], styles[j], params={"mode": "histogram"})
            assert torch.equal(img, ref)
        p = json.loads(json.dumps(res.provenance))
        assert p["method"] == "color" and p["seed"] == 3 and p["device"] == "cpu"
        assert p["params"] == {"mode": "histogram", "strength": 1.0}
        assert p["weights"] == {} and p["versions"]["torch"] == torch.__version__
        assert p["seconds"] >= 0

    def test_grid_rejects_batches(self):
        with pytest.raises(ValueError, match=r"contents\[0\] must be a single image"):
            stylize_grid("color", [torch.rand(2, 3, 8, 8)], [torch.rand(1, 3, 8, 8)])
