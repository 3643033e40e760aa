"""Seeds for every random draw, derived from the study seeds and stable labels (docs/design.md §2).

A draw is named by labels (a view, a split, a dose, an arm, a scan number); the same
study seed and labels always give the same Generator, whatever runs before or beside it.
"""

from __future__ import annotations

import zlib

import numpy as np


def seed_sequence(seed: int, *labels: str | float) -> list[int]:
    """``[seed, crc32(label), ...]``: the entropy of a Generator for one labelled draw."""
    return [seed, *(zlib.crc32(str(label).encode()) for label in labels)]


def condition_rng(seed: int, *labels: str | float) -> np.random.Generator:
    """A Generator seeded from ``seed`` and stable labels (dose, view, split, ...)."""
    return np.random.default_rng(seed_sequence(seed, *labels))


def derived_seed(seed: int, *labels: str | float) -> int:
    """A seed for one run (a network's training, an LSQML run), derived from ``seed`` and labels."""
    return int(condition_rng(seed, *labels).integers(2**31 - 1))
