"""Atomic writes: write to a temporary sibling, then rename over the target.

A crash or an error leaves either the old content or nothing, never a half-written file or folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; on success it is renamed onto ``path``.

    The temporary name keeps the suffix, so writers that choose a format by extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


#: Whether files and folders can be made relative to an open folder (POSIX; not on Windows).
_RELATIVE_TO_FOLDER = (os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd
                       and hasattr(os, "O_DIRECTORY"))


def write_files(folder: str | Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` (relative path -> bytes) as new files under ``folder``, making sub-folders.

    Meant for a fresh temporary folder (see :func:`atomic_directory`): a file that already exists is
    an error. One open, write and close per file, each relative to an open descriptor of ``folder``
    where the system allows it (the kernel then resolves only the names below it)."""
    folder = os.fspath(folder)
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY) if _RELATIVE_TO_FOLDER else None

    def path(rel: str) -> str:
        return rel if dir_fd is not None else os.path.join(folder, rel)

    try:
        made: set[str] = set()
        for sub in sorted({rel.rpartition("/")[0] for rel in files} - {""}):
            parts = sub.split("/")
            for depth in range(1, len(parts) + 1):
                name = "/".join(parts[:depth])
                if name not in made:
                    made.add(name)
                    try:
                        os.mkdir(path(name), dir_fd=dir_fd)
                    except FileExistsError:
                        pass
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        for rel, data in files.items():
            fd = os.open(path(rel), flags, 0o666, dir_fd=dir_fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; on success it replaces ``path`` whole.

    An existing folder at ``path`` is kept until the new one is complete, then removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "previous")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
