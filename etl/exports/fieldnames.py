"""Shapefile field names: at most 10 characters (the DBF limit), never two alike, full names in a sidecar.

The rule, applied to a layer's fields in their order:

1. A name of 10 characters or fewer is kept as it is.
2. A longer name is cut to its first 10 characters.
3. If that cut name is already taken (by a kept name, or by an earlier cut
   one; compared without case, as DBF readers do), the end of the cut name
   is replaced by ``_2``, ``_3``, ... (``declared_c``, then ``declared_2``,
   ``declared_3``), the first number that gives a free name.

Kept names are reserved before any long name is cut, so a short field never
loses its own name to a cut one. The zip carries ``fields.csv`` with each
short name, the full name, its type and its meaning.

>>> shapefile_names(["declared_commune_code", "declared_commune_name", "kind", "declared_c"])
{'declared_commune_code': 'declared_2', 'declared_commune_name': 'declared_3', 'kind': 'kind', 'declared_c': 'declared_c'}
"""

from __future__ import annotations

from collections.abc import Sequence

DBF_NAME_LENGTH = 10


def shapefile_names(names: Sequence[str]) -> dict[str, str]:
    """Full name -> DBF name of at most 10 characters, unique without case (the rule above)."""
    taken = {n.lower() for n in names if len(n) <= DBF_NAME_LENGTH}
    if len(taken) != sum(len(n) <= DBF_NAME_LENGTH for n in names):
        raise ValueError(f"field names that differ only by case: {sorted(names)}")
    out: dict[str, str] = {}
    for name in names:
        if len(name) <= DBF_NAME_LENGTH:
            out[name] = name
            continue
        short, n = name[:DBF_NAME_LENGTH], 1
        while short.lower() in taken:
            n += 1
            suffix = f"_{n}"
            short = name[:DBF_NAME_LENGTH - len(suffix)] + suffix
        taken.add(short.lower())
        out[name] = short
    return out
