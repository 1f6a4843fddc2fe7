"""Admin forms: method parameters from stylecore's schema, and bulk image upload."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.conf import settings
from django.utils.functional import lazy
from django.utils.html import escape
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from .models import (
    BackgroundQuestion,
    CultureTag,
    GanTrainingRun,
    MethodConfig,
    ParticipantGroup,
    Question,
    Study,
)
from .workers.catalogue import family_weights, method_specs

_PARAM_FIELD = "p__{method}__{param}"
_PARAM_IN_MESSAGE = re.compile(r"parameter '([^']+)'")


def _methods() -> dict[str, Any]:
    """``name -> MethodSpec`` of every registered method (empty if stylecore.methods is absent)."""
    return method_specs()


def family_is_present(family: str) -> bool:
    """Whether a method can run on ``family`` here: it needs no files, or some of its files are present."""
    present, missing = family_weights(family)
    return bool(present) or not missing


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
    parameter is shown on that parameter's field. This is the one validation:
    the validated values are stored and workers use them as they are.
    """

    error_messages = {
        "unknown_method": _("Unknown method %(method)s. Available: %(available)s."),
        "bad_family": _("%(error)s"),
        "absent_family": _("The weights of family %(family)s are not present on this server. Fetch them with: "
                           "%(command)s"),
    }

    method = forms.ChoiceField(label=_("Method"))
    family = forms.CharField(label=_("Weights family"), required=False, max_length=32, widget=forms.Select)

    class Media:
        js = ["studies/admin_method_form.js"]

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
            every = sorted({f for fs in families.values() for f in fs})
            present = [f for f in every if family_is_present(f)]
            absent = {f: family_weights(f)[1] for f in every if f not in present}
            current = self.instance.family or ""
            choices = [("", _("the method's default"))] + [(f, f) for f in present]
            if current and current not in present:
                choices.append((current, current))
            self.fields["family"].widget.choices = choices
            self.fields["family"].widget.attrs["data-families"] = json.dumps(families)
            help_parts = [_("Only families whose weight files are on this server are offered.")]
            for f, missing in absent.items():
                help_parts.append(_("%(family)s is absent: python -m stylecore weights fetch %(names)s") % {
                    "family": f, "names": " ".join(missing[:4]) + (" …" if len(missing) > 4 else "")})
            self.fields["family"].help_text = " ".join(str(p) for p in help_parts)

    def method_fieldsets(self) -> list[tuple[str, dict]]:
        """One admin fieldset per method with its parameter fields."""
        out = []
        for name, spec in self.specs.items():
            names = [param_field_name(name, p) for p in spec.params]
            if names:
                # admin_method_form.js shows only the chosen method's fieldset.
                fieldset = {"fields": names, "classes": ["method-params", f"method-{name}"]}
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
            family = spec.resolve_family(data.get("family") or None)
        except ValueError as exc:
            self.add_error("family", str(exc))
            return data
        if not family_is_present(family):
            self.add_error("family", forms.ValidationError(
                self.error_messages["absent_family"], code="absent_family",
                params={"family": family, "command": "python -m stylecore weights fetch "
                        + " ".join(family_weights(family)[1])}))
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

    kind = forms.ChoiceField(label=_("Kind"), choices=KIND_CHOICES)
    culture = forms.ModelChoiceField(
        label=_("Culture"), queryset=CultureTag.objects.all(), required=False,
        help_text=_("Required for style images: every image of this upload gets this tag."),
    )
    files = MultipleFileField(label=_("Files"), help_text=_("JPEG, PNG, WebP or TIFF files, or zip archives of them."))
    artist = forms.CharField(label=_("Artist"), required=False, max_length=200)
    source = forms.CharField(label=_("Source"), required=False, max_length=500)
    license = forms.CharField(label=_("Licence"), required=False, max_length=200)

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
    """A GAN training run; :meth:`GanTrainingRun.clean` checks its cultures and settings."""

    class Meta:
        model = GanTrainingRun
        fields = ["study", "label", "model", "cultures", "config"]

    def clean_config(self) -> object:
        # An empty box means the trainer's defaults.
        config = self.cleaned_data.get("config")
        return {} if config in (None, "") else config


# --- Study design forms: per-language fields instead of JSON boxes ----------------------------

#: Participant-facing texts of a study, in the order researchers write them.
STUDY_TEXTS = [
    ("title", _("Title shown to participants (optional; the study's title otherwise)")),
    ("consent", _("Consent")),
    ("instructions", _("Instructions")),
    ("thanks", _("Thank-you page")),
    ("withdrawal", _("Withdrawal page (optional; the default says every answer is deleted)")),
]


#: Where each text appears, for researchers writing it (the page adds its own heading and buttons).
STUDY_TEXT_HELP = {
    "title": _("The page header and browser tab in this language; leave empty to show the study's title."),
    "consent": _("Shown under the heading “Information and consent”, above the buttons “I agree to take part” and "
                 "“I do not agree”."),
    "instructions": _("Shown before the practice question, above a standard explanation of the answer formats and "
                      "of attention checks."),
    "thanks": _("Shown under the heading “Thank you!”, above the completion code."),
}


def site_languages() -> list[tuple[str, str]]:
    return [(code, str(name)) for code, name in settings.LANGUAGES]


def _lang_field(code: str) -> str:
    return code.replace("-", "_")


def study_text_field(key: str, code: str) -> str:
    return f"text_{key}__{_lang_field(code)}"


def question_text_field(code: str) -> str:
    return f"text__{_lang_field(code)}"


def _per_language(msgid, name) -> str:
    """``msgid % {"language": name}`` in the language of the request that shows it, not of the import."""
    return lazy(lambda: str(msgid) % {"language": name}, str)()


def _declared(builder) -> dict[str, forms.Field]:
    return {name: field for name, field in builder()}


def _study_text_fields():
    for key, label in STUDY_TEXTS:
        for code, name in settings.LANGUAGES:
            yield study_text_field(key, code), forms.CharField(
                label=format_lazy("{} · {}", label, name), required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
                help_text=STUDY_TEXT_HELP.get(key, ""),
            )


class _StudyFormBase(forms.ModelForm):
    """A study: languages as checkboxes, each participant-facing text as one box per language."""

    error_messages = {
        "default_not_offered": _("The default language must be one of the offered languages."),
        "no_language": _("Offer at least one language."),
    }

    languages = forms.MultipleChoiceField(
        label=_("Languages offered"), choices=site_languages, widget=forms.CheckboxSelectMultiple,
        help_text=_("Every offered language needs every text below (the go-live checklist checks)."),
    )
    default_language = forms.ChoiceField(label=_("Default language"), choices=site_languages)

    class Media:
        # Hides the text boxes of languages the study does not offer.
        js = ["studies/admin_languages.js"]

    class Meta:
        model = Study
        fields = ["title", "slug", "description", "owners", "languages", "default_language", "image_size", "seeds",
                  "trials_per_participant", "session_timeout_minutes", "max_attention_failures", "closes_at",
                  "completion_url", "screenout_url", "completion_code"]
        help_texts = {
            "image_size": _("Longer side of generated images, in pixels. Participants see candidates at most this "
                            "large (never enlarged), the artwork and content photo in a box of the same size, so "
                            "small sizes that generate fast also look small. Enlarge shows each image at its stored "
                            "size: artworks and photos as uploaded."),
            "max_attention_failures": _("Participants failing more attention checks than this are marked excluded "
                                        "and left out of the analysis; they may still finish and are shown the "
                                        "completion code (each session has STYLESTUDY_ATTENTION_CHECKS checks, "
                                        "2 by default)."),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        texts = self.instance.texts or {}
        for key, _label in STUDY_TEXTS:
            for code, _name in site_languages():
                name = study_text_field(key, code)
                if name in self.fields:
                    self.fields[name].initial = (texts.get(code) or {}).get(key, "")

    def clean(self) -> dict:
        data = super().clean()
        offered = data.get("languages") or []
        if "languages" in self.fields and not offered:
            self.add_error("languages", forms.ValidationError(self.error_messages["no_language"], code="required"))
        default = data.get("default_language")
        if "default_language" in self.fields and default and offered and default not in offered:
            self.add_error("default_language", forms.ValidationError(
                self.error_messages["default_not_offered"], code="default_not_offered"))
        texts = {code: dict(v) for code, v in (self.instance.texts or {}).items() if isinstance(v, dict)}
        for key, _label in STUDY_TEXTS:
            for code, _name in site_languages():
                name = study_text_field(key, code)
                if name not in self.fields:
                    continue
                value = (data.get(name) or "").strip()
                if value:
                    texts.setdefault(code, {})[key] = value
                else:
                    texts.get(code, {}).pop(key, None)
        self.instance.texts = {code: v for code, v in texts.items() if v}
        return data


StudyForm = type("StudyForm", (_StudyFormBase,), {**_declared(_study_text_fields), "__module__": __name__})


def _question_fields():
    for code, name in settings.LANGUAGES:
        suffix = _lang_field(code)
        yield question_text_field(code), forms.CharField(
            label=_per_language(_("Question text · %(language)s"), name), required=False,
            widget=forms.TextInput(attrs={"size": 70}))
        yield f"low__{suffix}", forms.CharField(
            label=_per_language(_("Lowest point · %(language)s"), name), required=False, max_length=60)
        yield f"high__{suffix}", forms.CharField(
            label=_per_language(_("Highest point · %(language)s"), name), required=False, max_length=60)


class _QuestionFormBase(forms.ModelForm):
    """A question with its text and Likert end labels as one field per language."""

    class Media:
        # Shows only the fields of the chosen response format (Question.kind_fields).
        js = ["studies/admin_question_form.js"]

    class Meta:
        model = Question
        fields = ["study", "order", "kind", "dimension", "scale_points", "n_candidates", "pair_design", "min_exposure",
                  "show_style", "show_content"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            self.fields["kind"].widget.attrs["data-kind-fields"] = json.dumps(Question.kind_fields)
        texts, labels = self.instance.texts or {}, self.instance.scale_labels or {}
        for code, _name in site_languages():
            suffix = _lang_field(code)
            pair = labels.get(code) or ["", ""]
            for name, value in ((question_text_field(code), texts.get(code, "")), (f"low__{suffix}", pair[0]),
                                (f"high__{suffix}", pair[-1])):
                if name in self.fields:
                    self.fields[name].initial = value

    def clean(self) -> dict:
        data = super().clean()
        texts = dict(self.instance.texts or {})
        labels = dict(self.instance.scale_labels or {})
        for code, _name in site_languages():
            suffix = _lang_field(code)
            if question_text_field(code) in self.fields:
                text = (data.get(question_text_field(code)) or "").strip()
                if text:
                    texts[code] = text
                else:
                    texts.pop(code, None)
            if f"low__{suffix}" in self.fields:
                low, high = (data.get(f"low__{suffix}") or "").strip(), (data.get(f"high__{suffix}") or "").strip()
                if low and high:
                    labels[code] = [low, high]
                elif low or high:
                    self.add_error(f"high__{suffix}" if low else f"low__{suffix}",
                                   _("Give both end labels, or neither (the defaults are used)."))
                else:
                    labels.pop(code, None)
        self.instance.texts, self.instance.scale_labels = texts, labels
        return data


QuestionForm = type("QuestionForm", (_QuestionFormBase,), {**_declared(_question_fields), "__module__": __name__})


def _background_fields():
    for code, name in settings.LANGUAGES:
        yield question_text_field(code), forms.CharField(
            label=_per_language(_("Question · %(language)s"), name), required=False,
            widget=forms.TextInput(attrs={"size": 60}))


class _BackgroundQuestionFormBase(forms.ModelForm):
    """A background question: text per language, and its answers one per line with their labels."""

    error_messages = {
        "bad_choice_line": _("Line %(line)d: write “value | English | 简体中文 | 日本語” (labels may be left out)."),
        "duplicate_value": _("The answer value %(value)s appears twice."),
    }

    choices_text = forms.CharField(
        label=_("Answers"), required=False, widget=forms.Textarea(attrs={"rows": 5, "cols": 70}),
        help_text=_("One answer per line: value | English label | Chinese label | Japanese label. The value is "
                    "what eligibility rules and exports use."),
    )

    class Meta:
        model = BackgroundQuestion
        fields = ["study", "order", "key", "kind", "required"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for code, _name in site_languages():
            if question_text_field(code) in self.fields:
                self.fields[question_text_field(code)].initial = (self.instance.texts or {}).get(code, "")
        codes = [code for code, _ in site_languages()]
        self.fields["choices_text"].initial = "\n".join(
            " | ".join([str(c.get("value", ""))] + [(c.get("labels") or {}).get(code, "") for code in codes])
            for c in self.instance.choices or []
        )

    def clean(self) -> dict:
        data = super().clean()
        texts = dict(self.instance.texts or {})
        for code, _name in site_languages():
            if question_text_field(code) in self.fields:
                text = (data.get(question_text_field(code)) or "").strip()
                if text:
                    texts[code] = text
                else:
                    texts.pop(code, None)
        self.instance.texts = texts
        codes = [code for code, _ in site_languages()]
        choices, seen = [], set()
        for number, line in enumerate((data.get("choices_text") or "").splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")]
            if not parts[0] or len(parts) > len(codes) + 1:
                self.add_error("choices_text", forms.ValidationError(
                    self.error_messages["bad_choice_line"], code="bad_choice_line", params={"line": number}))
                return data
            if parts[0] in seen:
                self.add_error("choices_text", forms.ValidationError(
                    self.error_messages["duplicate_value"], code="duplicate_value", params={"value": parts[0]}))
                return data
            seen.add(parts[0])
            labels = {code: label for code, label in zip(codes, parts[1:], strict=False) if label}
            choices.append({"value": parts[0], "labels": labels})
        self.instance.choices = choices
        return data


BackgroundQuestionForm = type(
    "BackgroundQuestionForm", (_BackgroundQuestionFormBase,),
    {**_declared(_background_fields), "__module__": __name__},
)


class ParticipantGroupForm(forms.ModelForm):
    """A group whose eligibility is picked from the study's background questions and their answers.

    Each choice is ``key=value``; a participant qualifies with one of the
    chosen answers for every question that has any chosen. Number ranges
    (``{"min": …, "max": …}``) set elsewhere are kept as they are.
    """

    eligibility_answers = forms.MultipleChoiceField(
        label=_("Eligible answers"), required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("Tick the background answers that place a participant in this group: any ticked answer of a "
                    "question qualifies, and every question with a tick must be met (none ticked: everyone)."),
    )

    class Meta:
        model = ParticipantGroup
        fields = ["study", "slug", "name", "culture", "quota"]

    def __init__(self, *args, study: Study | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        study = study or (self.instance.study if self.instance.study_id else None)
        if study is not None and study.is_frozen:
            # A live study's eligibility is frozen: shown read-only by the admin, never rebuilt here.
            self.fields.pop("eligibility_answers", None)
            return
        options = []
        if study is not None and study.pk:
            for bq in study.background_questions.order_by("order", "id"):
                if bq.kind in (BackgroundQuestion.Kind.CHOICE, BackgroundQuestion.Kind.MULTI):
                    options.append((f"{bq.text('en')} ({bq.key})",
                                    [(f"{bq.key}={v}", label) for v, label in bq.choice_labels("en")]))
        rules = self.instance.eligibility or {}
        chosen = [f"{k}={v}" for k, vs in rules.items() if isinstance(vs, list) for v in vs]
        known = {value for _, opts in options for value, _ in opts}
        # Values no longer offered stay visible, so the checklist's complaint can be fixed here.
        stale = [(c, _("%(answer)s (not an answer of the study)") % {"answer": c}) for c in chosen if c not in known]
        if stale:
            options.append((_("unknown answers"), stale))
        self.fields["eligibility_answers"].choices = options
        self.fields["eligibility_answers"].initial = chosen

    def clean(self) -> dict:
        data = super().clean()
        if "eligibility_answers" not in self.fields:
            return data
        rules = {k: v for k, v in (self.instance.eligibility or {}).items() if isinstance(v, dict)}
        for item in data.get("eligibility_answers") or []:
            key, _sep, value = item.partition("=")
            rules.setdefault(key, []).append(value)
        self.instance.eligibility = rules
        return data


class DesignImportForm(forms.Form):
    """A study design exported as JSON, imported as a new draft."""

    design = forms.FileField(label=_("Design file (JSON)"))
    title = forms.CharField(label=_("Title of the new study"), required=False, max_length=200)

    def clean_design(self) -> dict:
        import json

        raw = self.cleaned_data["design"].read()
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise forms.ValidationError(_("Not a JSON file: %(error)s") % {"error": exc}, code="invalid") from None
        if not isinstance(data, dict) or data.get("format") != "stylestudy-design":
            raise forms.ValidationError(_("Not a stylestudy design file (no “format”: “stylestudy-design”)."),
                                        code="invalid")
        return data
