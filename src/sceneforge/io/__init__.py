"""Readers of real input formats and writers of scene outputs; every write is atomic."""
