"""Compact one-line JSON, byte for byte what ``json.dumps(doc, separators=(",", ":"))`` writes, faster.

The synthetic engine writes several JSON files per view, mostly 4x4 matrices; Python's encoder
spends most of its time formatting floats. :func:`compact_json` encodes with orjson when it is
installed and then makes its output Python's:

- floats: orjson writes the same shortest round-trip digits as ``repr(float)`` but another notation
  below 1e-4 (``0.00001`` for ``1e-05``) and at or above 1e16 (``1e16`` for ``1e+16``); every such
  number (one with an exponent, or starting ``0.0000``) is written again with ``repr``;
- anything else orjson would write differently is handed to ``json.dumps``: a document that does
  not come back equal from the bytes (NaN and infinities, which orjson writes as ``null``; tuples;
  arrays left to ``default``), non-ASCII text and DEL (``json`` escapes them), keys that are not
  strings, and whatever orjson refuses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

try:  # about 10x faster than json's C encoder on float-heavy documents
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is optional: json gives the same bytes, slower
    _orjson = None

# What marks a number orjson writes in another notation than repr: an exponent ("e-", or "e" and a
# digit) or "0.0000" (|x| < 1e-4). A regular expression for the first kind (its literal first byte lets
# the regex engine skip ahead) and bytes.find for the second are faster than anything else tried.
_EXPONENT = re.compile(rb"e[-0-9]")
_REWRITE = re.compile(rb"-?(?:\d+(?:\.\d+)?e[-+]?\d+|0\.0000\d*)")


def _finds(data: bytes, marker: bytes) -> list[int]:
    """Every position of ``marker`` in ``data``."""
    found, at = [], data.find(marker)
    while at >= 0:
        found.append(at)
        at = data.find(marker, at + 1)
    return found


def _python_floats(out: bytes) -> bytes:
    """orjson's compact ``out`` with every float in another notation than repr's written by repr.

    A number sits between one of ``[,:`` and one of ``,]}``; a marker inside a string gives no number
    to rewrite (or one that :func:`compact_json`'s round trip then finds changed)."""
    hits = [m.start() for m in _EXPONENT.finditer(out)] + _finds(out, b"0.0000")
    if not hits:
        return out
    spans = set()
    for at in hits:
        start, end = at, at
        while start > 0 and out[start - 1] not in b"[,:":
            start -= 1
        while end < len(out) and out[end] not in b",]}":
            end += 1
        spans.add((start, end))
    pieces, last = [], 0
    for start, end in sorted(spans):
        if _REWRITE.fullmatch(out, start, end):
            pieces += [out[last:start], repr(float(out[start:end])).encode("ascii")]
            last = end
    pieces.append(out[last:])
    return b"".join(pieces)


def compact_json(doc: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """``(json.dumps(doc, separators=(",", ":"), default=default) + "\\n").encode()`` (module docstring)."""
    if _orjson is not None and isinstance(doc, (dict, list)):
        try:
            out = _orjson.dumps(doc, default=default)
        except TypeError:  # non-string keys, integers beyond 64 bits, ...
            out = None
        if out is not None and out.isascii() and b"\x7f" not in out:  # json escapes both, orjson neither
            out = _python_floats(out)
            try:
                same = _orjson.loads(out) == doc
            except (ValueError, TypeError):  # e.g. an array compared with a list
                same = False
            if same is True:
                return out + b"\n"
    return (json.dumps(doc, separators=(",", ":"), default=default) + "\n").encode("utf-8")
