"""Fuzzed method-parameter forms: every input is either valid within the schema or a form error."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studies.admin_forms import MethodConfigForm, _methods, param_field_name
from studies.models import MethodConfig, Study

pytestmark = pytest.mark.django_db

SPECS = _methods()
if not SPECS:  # pragma: no cover
    pytest.skip("stylecore.methods is not installed", allow_module_level=True)

_value = st.one_of(
    st.text(max_size=30),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**80), 2**80).map(str),
    st.sampled_from(["", "0", "-0", "1", "0.5", "1e308", "-1e308", "nan", "inf", "-inf", "1e-320", "True", "on",
                     "None", "[]", "{}", "\x00", "１", "0x10", "1_000", " 2 "]),
)


@pytest.fixture
def study(django_user_model):
    owner = django_user_model.objects.create_user("owner")
    study = Study.objects.create(title="Form fuzz", slug="form-fuzz")
    study.owners.add(owner)
    return study


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(method=st.sampled_from(sorted(SPECS) + ["", "nope", "wct\x00"]), family=_value,
       label=st.text(max_size=120), values=st.data())
def test_method_form_never_crashes(study, method, family, label, values):
    spec = SPECS.get(method)
    data = {"study": str(study.pk), "label": label, "method": method, "family": family}
    for name, s in SPECS.items():
        for pname in s.params:
            if values.draw(st.booleans()):
                data[param_field_name(name, pname)] = values.draw(_value)
    form = MethodConfigForm(data=data)
    valid = form.is_valid()  # must not raise
    if not valid:
        assert form.errors
        return
    assert spec is not None
    params = form.cleaned_data["params"]
    assert spec.validate(params) == params, "validated parameters are a fixed point"
    for pname, param in spec.params.items():
        value = params.get(pname, param.default)
        if param.kind in ("float", "int") and value is not None:
            assert math.isfinite(float(value))
            assert param.minimum is None or value >= param.minimum
            assert param.maximum is None or value <= param.maximum
        if param.kind == "choice":
            assert value in param.choices or str(value) in map(str, param.choices)
    config = form.save()
    assert MethodConfig.objects.get(pk=config.pk).params == params
