"""Perception: depth -> points, camera, floor plane, world frame, background mesh."""

from sceneforge.perception.base import ObjectObservation, Perception, PerceptionResult

__all__ = ["ObjectObservation", "Perception", "PerceptionResult"]
