"""Where two JSON values differ, entry by entry, and both sides as short text.

Shared by the report's table of changes made while live and the admin's
run panel and audit records. Imports nothing but the standard library, so the
web process can use it without the report's dependencies.
"""

from __future__ import annotations

import json
from typing import Any

#: A key or list entry that one side of a change does not have.
ABSENT = object()


def json_differences(before: Any, after: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """``(path, before, after)`` of every entry of two JSON values that differs.

    Mappings are compared key by key (``.key``), lists entry by entry
    (``[i]``, from 0); a key or entry only one side has is :data:`ABSENT` on
    the other. Equal values give one row for ``path`` (a record of no change).

    Example:
        >>> json_differences([{"labels": {"ja": "その他"}}], [{"labels": {"ja": "その他の文化"}}])
        [('[0].labels.ja', 'その他', 'その他の文化')]
    """
    if before == after:
        return [] if path else [(path, before, after)]
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [*before, *(k for k in after if k not in before)]
        return [d for k in keys for d in json_differences(before.get(k, ABSENT), after.get(k, ABSENT),
                                                          f"{path}.{k}")]
    if isinstance(before, list) and isinstance(after, list):
        return [d for i in range(max(len(before), len(after)))
                for d in json_differences(before[i] if i < len(before) else ABSENT,
                                          after[i] if i < len(after) else ABSENT, f"{path}[{i}]")]
    return [(path, before, after)]


def changed_texts(before: Any, after: Any, limit: int = 160, context: int = 40) -> tuple[str, str]:
    """Both sides of a change as text, cut (if longer than ``limit``) around where they differ,
    so what changed is never cut off; the characters left out are counted."""
    texts = [json_text(v) for v in (before, after)]
    if all(len(t) <= limit for t in texts):
        return texts[0], texts[1]
    common = 0
    while common < min(map(len, texts)) and texts[0][common] == texts[1][common]:
        common += 1
    start = max(0, common - context)
    out = []
    for text in texts:
        if len(text) <= limit:
            out.append(text)
            continue
        begin = min(start, len(text) - limit)
        end = begin + limit
        out.append((f"(+{begin} chars) " if begin else "") + text[begin:end]
                   + (f" (+{len(text) - end} chars)" if end < len(text) else ""))
    return out[0], out[1]


def json_text(value: Any) -> str:
    """A JSON value as text: strings as they are, the rest as JSON; empty and absent as ""."""
    if value is ABSENT or value is None or value == "" or value == {} or value == []:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def changed_entries(field: str, before: Any, after: Any) -> list[tuple[str, str, str]]:
    """``(field + path, before, after)`` as text, one per entry that differs (see :func:`json_differences`)."""
    return [(field + path, *changed_texts(b, a)) for path, b, a in json_differences(before, after)]
