"""Synthetic scene engine: layouts, cameras, rendering of views, dataset writer, local/Ray runner."""
