"""Shared fixtures: the shipped sample, small subsets of it, and the tiny model config.

Tests mirror the package (``tests/codec`` tests ``mmslim.codec``, ...). Markers: ``notebooks``
(papermill runs), ``slow`` and ``gpu`` (not run in CI); see ``pyproject.toml``.
"""

from __future__ import annotations

import numpy as np
import pytest

from mmslim.config import ModelConfig
from mmslim.data.dataset import FrameSet, load_frames
from mmslim.data.samples import sample_path


@pytest.fixture(scope="session")
def sample_file():
    """``data_samples/sample.npz``, found as the package finds it."""
    return sample_path("sample.npz")


@pytest.fixture(scope="session")
def sample_frames(sample_file) -> FrameSet:
    """Every frame of the shipped sample (480 frames of 224 x 64)."""
    return load_frames(sample_file)


@pytest.fixture(scope="session")
def few_frames(sample_frames):
    """``few_frames(subjects, frames)``: the first ``frames`` frames of each sequence of the
    first ``subjects`` walkers of the sample (2 sequences per walker)."""

    def select(subjects: int, frames: int) -> FrameSet:
        fs = sample_frames
        return fs.select(np.isin(fs.subject, fs.subjects()[:subjects]) & (fs.frame < frames))

    return select


@pytest.fixture(scope="session")
def tiny_config() -> ModelConfig:
    """The ``tiny`` preset: trains in seconds, for behaviour tests, not quality."""
    return ModelConfig.preset("tiny")
