"""Amodal completion: the full (occluded-included) mask and colour crop of every object."""

from sceneforge.amodal.base import AmodalCompleter, AmodalResult

__all__ = ["AmodalCompleter", "AmodalResult"]
