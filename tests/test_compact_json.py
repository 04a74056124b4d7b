"""compact_json writes exactly the bytes of json.dumps(doc, separators=(",", ":")) + newline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sceneforge.io import compact_json as cj
from sceneforge.io.compact_json import compact_json
from sceneforge.io.scene_json import json_default


def _python(doc, default=None) -> bytes:
    return (json.dumps(doc, separators=(",", ":"), default=default) + "\n").encode("utf-8")


def _random_float(rng: np.random.Generator) -> float:
    kind = rng.integers(6)
    if kind == 0:
        return float(rng.normal() * 10.0 ** rng.uniform(-30, 30))
    if kind == 1:  # around the notation boundaries 1e-4, 1e-5 and 1e16
        return float(rng.choice([1e-4, 1e-5, 1e16, 1e15, 1e17]) * rng.uniform(0.5, 2.0) * rng.choice([-1, 1]))
    if kind == 2:
        return float(rng.integers(-10**6, 10**6))
    if kind == 3:
        return float(rng.choice([0.0, -0.0, 5e-324, 1.7976931348623157e308, 0.1, 1e-4, 1e16, 1e-5]))
    if kind == 4:
        return float(np.round(rng.normal(), int(rng.integers(0, 8))))
    return float(rng.normal())


_STRINGS = ["", "chair", "e-5", "1e-5", "x,1e-5,y", "[0.00001]", ":2e5}", "0.0000", "a\"b", "back\\slash",
            "tab\there", "caf\u00e9", "line\nbreak", "\x7f", "\x01\b\f\r\x1f", "objects/001_chair.ply"]


def _random_doc(rng: np.random.Generator, depth: int = 0):
    kind = rng.integers(8 if depth < 3 else 4)
    if kind == 0:
        return _random_float(rng)
    if kind == 1:
        return int(rng.integers(-2**62, 2**62)) if rng.uniform() < 0.5 else int(rng.integers(-5, 5))
    if kind == 2:
        return _STRINGS[int(rng.integers(len(_STRINGS)))]
    if kind == 3:
        return [None, True, False][int(rng.integers(3))]
    if kind in (4, 5):
        return [_random_doc(rng, depth + 1) for _ in range(int(rng.integers(0, 6)))]
    return {_STRINGS[int(rng.integers(len(_STRINGS)))] + str(k): _random_doc(rng, depth + 1)
            for k in range(int(rng.integers(0, 5)))}


def test_compact_json_is_json_dumps_on_random_documents() -> None:
    rng = np.random.default_rng(0)
    for _ in range(3000):
        doc = {"doc": _random_doc(rng), "matrix": (rng.normal(size=(4, 4)) * 10.0 ** rng.uniform(-20, 20)).tolist()}
        assert compact_json(doc) == _python(doc)


@pytest.mark.parametrize("doc", [
    {"nan": float("nan")}, {"inf": [float("inf"), -float("inf")]}, {"tuple": (1.0, 2e-7)}, {1: "int key"},
    {"big": 2**70}, {"np": np.float64(3e-9), "i": np.int64(4)}, {"array": np.arange(3) * 1e-6},
    [1e16, -2.5e-8, "\u00e9"], {"deep": [[[[1e-300]]]]}, {"float32": np.float32(0.1)},
])
def test_compact_json_special_values(doc) -> None:
    assert compact_json(doc, default=json_default) == _python(doc, default=json_default)


def test_compact_json_without_orjson(monkeypatch) -> None:
    monkeypatch.setattr(cj, "_orjson", None)
    doc = {"a": [1e-7, 0.5, 1e20], "b": "x"}
    assert compact_json(doc) == _python(doc)


def test_python_floats_rewrites_only_numbers() -> None:
    out = b'{"1e-5":[1e-5,0.00001,10.00001,1e16,-2.5e-7],"s":"0.00001"}'
    assert cj._python_floats(out) == b'{"1e-5":[1e-05,1e-05,10.00001,1e+16,-2.5e-07],"s":"0.00001"}'
