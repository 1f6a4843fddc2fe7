"""The Chinese and Japanese catalogues: every string a participant reads is translated.

Read from the ``.po`` sources (what translators edit), so an empty or fuzzy
entry fails here even though ``compilemessages`` would quietly fall back to
English for it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = {lang: ROOT / "studies" / "locale" / lang / "LC_MESSAGES" / "django.po" for lang in ("zh_Hans", "ja")}
#: Sources of the strings participants read (pages, form errors, the busy page, language names).
PARTICIPANT_SOURCES = ("studies/templates/studies/", "studies/views.py", "studies/forms.py",
                       "studies/middleware.py", "config/settings.py")
PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]|\{\w*\}")


@dataclass
class Entry:
    msgid: str = ""
    msgstrs: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    references: list[str] = field(default_factory=list)


def read_catalogue(path: Path) -> dict[str, Entry]:
    """msgid -> entry of a .po file (header and obsolete entries left out)."""
    entries: dict[str, Entry] = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        entry, target = Entry(), None
        for line in block.splitlines():
            if line.startswith("#~"):
                break
            if line.startswith("#,"):
                entry.flags |= {f.strip() for f in line[2:].split(",")}
            elif line.startswith("#:"):
                entry.references += line[2:].split()
            elif line.startswith(("msgid ", "msgstr", "msgid_plural ")):
                keyword, _, literal = line.partition(" ")
                target = keyword
                if keyword.startswith("msgstr"):
                    entry.msgstrs.append("")
                text = ast.literal_eval(literal)
                if keyword == "msgid":
                    entry.msgid = text
                elif keyword.startswith("msgstr"):
                    entry.msgstrs[-1] = text
            elif line.startswith('"') and target:
                text = ast.literal_eval(line)
                if target == "msgid":
                    entry.msgid += text
                elif target.startswith("msgstr"):
                    entry.msgstrs[-1] += text
        if entry.msgid:
            entries[entry.msgid] = entry
    return entries


def _participant_facing(entry: Entry) -> bool:
    return any(ref.startswith(PARTICIPANT_SOURCES) for ref in entry.references)


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_every_participant_facing_string_is_translated(lang):
    catalogue = read_catalogue(CATALOGUES[lang])
    facing = [e for e in catalogue.values() if _participant_facing(e)]
    assert len(facing) >= 60, "the catalogue holds the participant pages' strings"
    untranslated = [e.msgid for e in facing if "fuzzy" in e.flags or not all(e.msgstrs)]
    assert untranslated == [], f"{lang}: empty or fuzzy participant-facing entries"


def _source_strings() -> set[str]:
    """Literal strings of the participant templates' translate tags and the participant code's _()."""
    found: set[str] = set()
    for template in (ROOT / "studies" / "templates" / "studies").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        found |= {a or b for a, b in re.findall(r'{%\s*translate\s+(?:"([^"]+)"|\'([^\']+)\')', text)}
    for name in ("views.py", "forms.py", "middleware.py"):
        text = (ROOT / "studies" / name).read_text(encoding="utf-8")
        found |= set(re.findall(r'\b_\("([^"\\]+)"\)', text))
    return found


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_participant_strings_in_the_sources_are_in_the_catalogue(lang):
    """A string added to a participant page without ``makemessages`` fails here too."""
    catalogue = read_catalogue(CATALOGUES[lang])
    strings = _source_strings()
    assert "I agree to take part" in strings and "Please answer before continuing." in strings
    missing = sorted(s for s in strings if s not in catalogue or not all(catalogue[s].msgstrs))
    assert missing == [], f"{lang}: run makemessages and translate"


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_translations_keep_every_placeholder(lang):
    """%(name)s and {name} survive translation (msgfmt checks only the python-format ones)."""
    wrong = [
        (e.msgid, s) for e in read_catalogue(CATALOGUES[lang]).values() for s in e.msgstrs
        if s and sorted(PLACEHOLDER.findall(s)) != sorted(PLACEHOLDER.findall(e.msgid))
    ]
    assert wrong == []


def test_reader_sees_empty_and_fuzzy_entries(tmp_path):
    """The checks above can fail: an empty and a fuzzy participant entry are found."""
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: ja\\n"\n\n'
        '#: studies/templates/studies/participant/done.html:3\nmsgid "Thank you!"\nmsgstr ""\n\n'
        '#: studies/views.py:9\n#, fuzzy\n#| msgid "Next"\nmsgid "Nest"\nmsgstr "次へ"\n\n'
        '#: studies/admin.py:4\nmsgid ""\n"Long "\n"admin text"\nmsgstr ""\n"長い"\n"管理テキスト"\n',
        encoding="utf-8")
    catalogue = read_catalogue(po)
    assert set(catalogue) == {"Thank you!", "Nest", "Long admin text"}
    assert catalogue["Long admin text"].msgstrs == ["長い管理テキスト"]
    bad = [e.msgid for e in catalogue.values()
           if _participant_facing(e) and ("fuzzy" in e.flags or not all(e.msgstrs))]
    assert bad == ["Thank you!", "Nest"]
