"""Typed errors. Every error a user can cause names the file (or value) and the problem.

The command line turns any :class:`SceneforgeError` into its message and exit code 2.
"""

from __future__ import annotations

from pathlib import Path


class SceneforgeError(Exception):
    """Base class of every error the project raises on purpose."""


class InputError(SceneforgeError, ValueError):
    """A bad input file or value; ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")

    def __reduce__(self):  # pickled by its arguments: errors raised in worker processes reach the driver intact
        return type(self), (self.path, self.problem)


class UnsupportedFormatError(InputError):
    """A file type that no reader handles."""


class ImageError(InputError):
    """An image that cannot be decoded or is truncated."""


class MaskError(InputError):
    """Instance masks that are empty or do not fit the image."""


class DepthError(InputError):
    """Depth that is unreadable, of the wrong size, or has no valid pixel."""


class CameraError(InputError):
    """A camera with impossible intrinsics or a size that disagrees with the image."""


class SceneFileError(InputError):
    """A scene file (scene.json, GLB) that is malformed."""


class MissingDependencyError(SceneforgeError, ImportError):
    """An optional dependency is needed for the part being used."""

    def __init__(self, package: str, extra: str | None = None, purpose: str = ""):
        hint = f'pip install "sceneforge[{extra}]"' if extra else f"pip install {package}"
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{what}: {hint}")
        self.arguments = (package, extra, purpose)

    def __reduce__(self):
        return type(self), self.arguments
