"""Learned models (torch): the SceneMaker-style pose transformer, its encoders, rectified flow,
the engine-dataset pipeline and the training loop. Importing this package imports torch."""
