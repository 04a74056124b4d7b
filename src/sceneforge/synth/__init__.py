"""Synthetic scene engine: layouts (I-Scene random, SceneMaker open-set), noise textures, cameras,
rendering to scene-input folders, dataset writing. See the submodules."""
