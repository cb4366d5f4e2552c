"""Boundary structures and levels: the vocabulary every module shares."""

from __future__ import annotations

from enum import Enum


class Structure(str, Enum):
    """Administrative structure: before or after the reform of 2025-07-01."""

    pre2025 = "pre2025"
    v2025 = "2025"


class Level(str, Enum):
    province = "province"
    district = "district"
    commune = "commune"


# Digits of a GSO code per level ("01", "001", "00001").
CODE_WIDTH = {Level.province: 2, Level.district: 3, Level.commune: 5}

LEVELS = {
    Structure.pre2025: (Level.province, Level.district, Level.commune),
    Structure.v2025: (Level.province, Level.commune),
}


def parent_level(structure: Structure, level: Level) -> Level | None:
    """The level of a unit's parent in ``structure`` (None for provinces).

    >>> parent_level(Structure.v2025, Level.commune)
    <Level.province: 'province'>
    """
    levels = LEVELS[structure]
    if level not in levels:
        raise ValueError(f"the {structure.value} structure has no {level.value} level (levels: {', '.join(x.value for x in levels)})")
    i = levels.index(level)
    return levels[i - 1] if i else None
