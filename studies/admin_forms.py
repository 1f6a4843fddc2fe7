"""Admin forms: method parameters from stylecore's schema, and bulk image upload."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _

from .models import CultureTag, GanTrainingRun, MethodConfig

_PARAM_FIELD = "p__{method}__{param}"
_PARAM_IN_MESSAGE = re.compile(r"parameter '([^']+)'")


def _methods() -> dict[str, Any]:
    """``name -> MethodSpec`` of every registered method (empty if stylecore.methods is absent)."""
    try:
        from stylecore.methods import available_methods, get_method
    except ImportError:
        return {}
    return {name: get_method(name) for name in available_methods()}


def param_field_name(method: str, param: str) -> str:
    return _PARAM_FIELD.format(method=method, param=param)


def _form_field(param, label: str, initial: Any) -> forms.Field:
    """A form field for one stylecore ``Param`` (bounds become widget limits too)."""
    common = {"label": label, "help_text": param.help, "initial": initial}
    if param.kind == "float":
        return forms.FloatField(required=False, min_value=param.minimum, max_value=param.maximum, **common)
    if param.kind == "int":
        return forms.IntegerField(
            required=False,
            min_value=None if param.minimum is None else int(param.minimum),
            max_value=None if param.maximum is None else int(param.maximum),
            **common,
        )
    if param.kind == "bool":
        return forms.BooleanField(required=False, **common)
    if param.kind == "choice":
        return forms.TypedChoiceField(
            required=False, choices=[(str(c), str(c)) for c in param.choices or ()], **common
        )
    return forms.CharField(required=False, **common)


class MethodConfigForm(forms.ModelForm):
    """A method configuration whose parameter fields come from the method's schema.

    Every method's parameters are fields named ``p__<method>__<param>`` (the
    admin shows each method's in its own fieldset); only the chosen method's
    are validated, by the method's own ``validate``, and an error naming a
    parameter is shown on that parameter's field.
    """

    error_messages = {
        "unknown_method": _("Unknown method %(method)s. Available: %(available)s."),
        "bad_family": _("%(error)s"),
    }

    method = forms.ChoiceField(label=_("method"))

    class Meta:
        model = MethodConfig
        fields = ["study", "label", "method", "family"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.specs = _methods()
        if "method" in self.fields:
            self.fields["method"].choices = [(n, f"{n}: {s.description}") for n, s in self.specs.items()]
        current = self.instance.params if self.instance.pk else {}
        for name, spec in self.specs.items():
            for pname, param in spec.params.items():
                initial = current.get(pname, param.default) if self.instance.method == name else param.default
                self.fields[param_field_name(name, pname)] = _form_field(param, pname, initial)
        families = {n: [f for f in s.families if f] for n, s in self.specs.items()}
        if "family" in self.fields:
            self.fields["family"].help_text = _("Leave empty for the method's default. Supported: %(list)s") % {
                "list": "; ".join(f"{n}: {', '.join(f) or '—'}" for n, f in families.items())
            }

    def method_fieldsets(self) -> list[tuple[str, dict]]:
        """One admin fieldset per method with its parameter fields."""
        out = []
        for name, spec in self.specs.items():
            names = [param_field_name(name, p) for p in spec.params]
            if names:
                fieldset = {"fields": names, "classes": ["collapse"]}
                describe = getattr(spec, "describe_defaults", None)
                defaults = describe() if describe else ""
                if defaults:
                    # Where a default departs from the method's paper, the researcher sees how before choosing it.
                    # The admin renders descriptions as HTML: escape the text.
                    fieldset["description"] = escape(_("Default levels per weights family: %(defaults)s") % {
                        "defaults": "; ".join(defaults.splitlines())
                    })
                out.append((f"{_('Parameters')}: {name}", fieldset))
        return out

    def clean(self) -> dict:
        data = super().clean()
        method = data.get("method")
        if not method:
            return data
        spec = self.specs.get(method)
        if spec is None:
            raise forms.ValidationError(
                self.error_messages["unknown_method"],
                code="unknown_method",
                params={"method": method, "available": ", ".join(self.specs) or "none"},
            )
        raw = {}
        for pname in spec.params:
            value = data.get(param_field_name(method, pname))
            if value is None or value == "":
                continue
            raw[pname] = value
        try:
            data["params"] = self.instance.params = spec.validate(raw)
        except ValueError as exc:
            match = _PARAM_IN_MESSAGE.search(str(exc))
            field = param_field_name(method, match[1]) if match else None
            if field in self.fields:
                self.add_error(field, str(exc))
            else:
                self.add_error(None, str(exc))
            return data
        try:
            spec.resolve_family(data.get("family") or None)
        except ValueError as exc:
            self.add_error("family", str(exc))
        return data

    def save(self, commit: bool = True) -> MethodConfig:
        self.instance.params = self.cleaned_data.get("params", {})
        return super().save(commit)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files (or zip archives) in one field."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class BulkUploadForm(forms.Form):
    """Content or style images for one study: files and/or zip archives."""

    error_messages = {"culture_required": _("Style images need a culture.")}

    KIND_CHOICES = [("content", _("Content photographs")), ("style", _("Style artworks"))]

    kind = forms.ChoiceField(label=_("kind"), choices=KIND_CHOICES)
    culture = forms.ModelChoiceField(
        label=_("culture"), queryset=CultureTag.objects.all(), required=False,
        help_text=_("Required for style images: every image of this upload gets this tag."),
    )
    files = MultipleFileField(label=_("files"), help_text=_("JPEG, PNG, WebP or TIFF files, or zip archives of them."))
    artist = forms.CharField(label=_("artist"), required=False, max_length=200)
    source = forms.CharField(label=_("source"), required=False, max_length=500)
    license = forms.CharField(label=_("licence"), required=False, max_length=200)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("kind") == "style" and not data.get("culture"):
            self.add_error("culture", forms.ValidationError(self.error_messages["culture_required"], code="required"))
        return data

    def row_fields(self) -> dict[str, str]:
        """Model fields set on every imported row."""
        keys = ["source", "license"] + (["artist"] if self.cleaned_data["kind"] == "style" else [])
        return {k: self.cleaned_data[k] for k in keys if self.cleaned_data.get(k)}


class GanTrainingRunForm(forms.ModelForm):
    """A GAN training run: target cultures must exist, the config is checked by the trainer's rules."""

    class Meta:
        model = GanTrainingRun
        fields = ["study", "label", "model", "cultures", "config"]

    def clean_cultures(self) -> list:
        cultures = self.cleaned_data.get("cultures") or []
        if not isinstance(cultures, list) or not cultures:
            raise forms.ValidationError(_("List at least one culture tag slug."), code="required")
        unknown = sorted(set(cultures) - set(CultureTag.objects.filter(slug__in=cultures).values_list("slug", flat=True)))
        if unknown:
            raise forms.ValidationError(_("Unknown culture tags: %(tags)s.") % {"tags": ", ".join(unknown)},
                                        code="unknown")
        return cultures

    def clean_config(self) -> dict:
        from .training import validate_training_config

        config = self.cleaned_data.get("config") or {}
        if not isinstance(config, dict):
            raise forms.ValidationError(_("The config must be a JSON object."), code="invalid")
        try:
            return validate_training_config(config)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None
