"""Readers of real input formats and writers of scene outputs; every write is atomic."""

from sceneforge.io.scenes import export_scene, load_scene, save_scene

__all__ = ["export_scene", "load_scene", "save_scene"]
