"""The ways a split-delivery test cuts its input: whole, one byte at a time, and at a
few seeded random points. A sans-IO parser must give the same outcome for every one."""

from __future__ import annotations

import random
from itertools import pairwise

SPLIT_SEEDS = (1, 2, 3, 4, 5)


def splits(data: bytes):
    """(name, chunks) for every way an input is fed."""
    yield "whole", [data]
    yield "bytewise", [data[i : i + 1] for i in range(len(data))]
    for seed in SPLIT_SEEDS:
        rng = random.Random(seed)
        count = min(len(data) - 1, rng.randint(1, 12))
        cuts = sorted(rng.sample(range(1, len(data)), count)) if count > 0 else []
        yield f"seed{seed}", [data[a:b] for a, b in pairwise([0, *cuts, len(data)])]
