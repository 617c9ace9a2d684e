"""Names people give (subjects, persons, keys) and the metadata beside them: one set of rules.

A name is NFC-normalised (so "é" typed as one code point or as "e" + accent is one name),
stripped, and refused when it holds a character that does not show: control (Cc), format
(Cf: zero-width spaces and joiners, right-to-left overrides, byte-order marks), line and
paragraph separators, surrogates or unassigned code points -- such names make subjects
that look like another ("Alice" and "Alice\\u200b") or reorder text in logs and pages.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from faceprint.errors import InputError

__all__ = ["MAX_METADATA_BYTES", "clean_name", "lookup_name", "validate_metadata"]

MAX_METADATA_BYTES = 16 * 1024
_HIDDEN = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Cs": "a surrogate",
    "Cn": "an unassigned character",
}


def lookup_name(name: str) -> str:
    """The form a name is stored under (NFC, stripped), for look-ups; never raises."""
    return unicodedata.normalize("NFC", name).strip() if isinstance(name, str) else name


def clean_name(name: Any, what: str = "a subject name", *, max_len: int = 200, collapse: bool = False) -> str:
    """``name`` as stored: NFC, stripped (inner whitespace runs collapsed to one space when
    ``collapse``); InputError naming the problem when it is empty, too long or holds a
    hidden character."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{what} must be a non-empty string")
    name = unicodedata.normalize("NFC", name).strip()
    for i, ch in enumerate(name):
        kind = _HIDDEN.get(unicodedata.category(ch))
        if kind is not None:
            raise InputError(f"{what} may not contain {kind} (U+{ord(ch):04X} at position {i + 1})")
    if collapse:
        name = " ".join(name.split())
    if len(name) > max_len:
        raise InputError(f"{what} may have at most {max_len} characters")
    return name


def validate_metadata(metadata: Any) -> dict[str, Any]:
    """A JSON object of at most :data:`MAX_METADATA_BYTES` bytes (as JSON)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InputError("metadata must be a JSON object")
    try:
        size = len(json.dumps(metadata, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        raise InputError(f"metadata is not JSON-serialisable: {exc}") from None
    if size > MAX_METADATA_BYTES:
        raise InputError(f"metadata is {size:,} bytes as JSON; at most {MAX_METADATA_BYTES:,} are accepted")
    return metadata
