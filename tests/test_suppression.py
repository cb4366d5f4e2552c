"""Suppression against an intruder: crafted tables, a country-like one and the whole 2025 country.

The intruder (tests/intruder.py) sees only the published table and knows
every relation; in the second model it also knows the method: it is told
which hidden cells are complementary (at least k), and that the parts of a
shown total that are all hidden and none complementary are all below k. For
every primary cell, the interval it computes must reach from 0 to k. The
same intruder recovers cells from tables published the old way, so these
tests can fail.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from geodata.reference_data import REFERENCE_DIR
from geodata.roles import Role
from geodata.settings import Settings
from maps.disclosure_audit import audit, joint_audit
from maps.suppression import (
    COMPLEMENTARY,
    PRIMARY,
    SHOWN,
    STRUCTURAL,
    hierarchical_table,
    primary_status,
    protect,
    roll_up,
    suppression_k,
)
from tests.intruder import Intruder, narrow_cells, table_relations, told_small

KINDS = ("aspirant", "returnee", "departure")
MEASURES = (*KINDS, "all")
PARTS = {"all": KINDS}


def published_of(table, status) -> dict:
    return {table.key(c): (None if status[c] >= PRIMARY else int(table.values[c])) for c in range(table.size)}


def parents_of(table) -> dict:
    return {u: (table.units[p] if p >= 0 else None) for u, p in zip(table.units, table.parent, strict=True)}


def leaks(table, status, k: int, integer: bool = False, sample: int | None = None) -> dict:
    """Primary cells an intruder narrows (its interval must reach from 0 to k): from the table alone ("plain"),
    and knowing the method ("told": every complementary cell is at least k, the parts of a shown total that
    are all hidden and none complementary are below k)."""
    published = published_of(table, status)
    relations = table_relations(parents_of(table), table.measures, table.parts_of)
    primary = [table.key(c) for c in np.flatnonzero(status == PRIMARY)]
    if sample is not None and len(primary) > sample:
        primary = random.Random(k).sample(primary, sample)
    complementary = [table.key(c) for c in np.flatnonzero(status == COMPLEMENTARY)]
    plain = Intruder(published, relations, integer=integer)
    told = Intruder(published, relations, k=k, integer=integer, big=complementary,
                    small=told_small(published, relations, complementary))
    return {"plain": narrow_cells(plain, primary, k), "told": narrow_cells(told, primary, k)}


def unit_table(parents: dict, leaf: dict, structural=()) -> object:
    return hierarchical_table(parents, MEASURES, PARTS, roll_up(parents, MEASURES, PARTS, leaf), structural)


# -- the attacks of the audit --------------------------------------------------------------------
def test_shown_zeros_made_hidden_cells_at_least_one_now_zeros_are_hidden_too():
    """Commune: all = 10, aspirant = 8, returnee 1, departure 1. Shown zeros elsewhere made every hidden cell >= 1."""
    parents = {"d": None, "c1": "d", "c2": "d", "c3": "d"}
    leaf = {"c1": {"aspirant": 8, "returnee": 1, "departure": 1}, "c2": {"aspirant": 30, "returnee": 12},
            "c3": {"aspirant": 25, "returnee": 9, "departure": 14}}
    table = unit_table(parents, leaf)
    k = 5
    relations = table_relations(parents, MEASURES, PARTS)
    # The old publication: the two small kinds hidden, zeros shown; the intruder's bound 1 comes from there.
    old = {table.key(c): int(table.values[c]) for c in range(table.size)}
    old["c1", "returnee"] = old["c1", "departure"] = None
    old["c2", "returnee"] = old["d", "returnee"] = None  # complements, as today's rule picked them
    # No relation had a single hidden cell, yet the district's departures (15) minus c2's 0 and c3's 14 give
    # c1's 1, and c1's returnees follow from its all = 10.
    assert narrow_cells(Intruder(old, relations), [("c1", "returnee"), ("c1", "departure")], k) == {
        ("c1", "returnee"): (1.0, 1.0), ("c1", "departure"): (1.0, 1.0)}
    # The method of today must not leak; the 0 of c2's departures is now hidden like a small count.
    status = protect(table, k).status
    assert status[table.cell("c2", "departure")] == PRIMARY
    assert leaks(table, status, k, integer=True) == {"plain": {}, "told": {}}


def test_a_visible_total_whose_parts_are_all_small_is_not_given_away():
    """All = 12 with three hidden kinds of 4: told they are all primary, the intruder pins each at 4."""
    parents = {"c1": None}
    table = unit_table(parents, {"c1": {"aspirant": 4, "returnee": 4, "departure": 4}})
    k = 5
    naive = primary_status(table, k)  # the three 4s hidden, nothing else
    found = leaks(table, naive, k)
    assert found["told"] == {("c1", kind): (4.0, 4.0) for kind in KINDS}
    assert found["plain"] == {}  # without knowing the method, each could be 0..12
    status = protect(table, k).status
    assert leaks(table, status, k, integer=True) == {"plain": {}, "told": {}}
    # The method hides the total instead: a complement, at least k, so "all parts small" is no longer told.
    assert status[table.cell("c1", "all")] == COMPLEMENTARY


def test_a_lone_hidden_cell_is_never_left_alone():
    parents = {"d": None, "a": "d", "b": "d", "c": "d"}
    table = hierarchical_table(parents, ["n"], {}, {("d", "n"): 40, ("a", "n"): 3, ("b", "n"): 12, ("c", "n"): 25})
    naive = primary_status(table, 5)
    assert leaks(table, naive, 5)["plain"] == {("a", "n"): (3.0, 3.0)}
    status = protect(table, 5).status
    assert status[table.cell("a", "n")] == PRIMARY and (status == COMPLEMENTARY).sum() >= 1
    assert leaks(table, status, 5, integer=True) == {"plain": {}, "told": {}}


def test_zeros_are_primary_and_structural_zeros_are_shown():
    parents = {"p": None, "d1": "p", "d2": "p", "c1": "d1", "c2": "d1", "c3": "d2", "c4": "d2"}
    leaf = {"c1": {"aspirant": 40, "returnee": 12, "departure": 9}, "c2": {"aspirant": 0, "returnee": 7, "departure": 30}}
    # d2 did not exist in the period (nor its communes): zero by definition, shown.
    table = unit_table(parents, leaf, structural=["c3", "c4"])
    status = protect(table, 5).status
    assert status[table.cell("c2", "aspirant")] == PRIMARY
    assert all(status[table.cell(u, m)] == STRUCTURAL for u in ("d2", "c3", "c4") for m in MEASURES)
    assert status[table.cell("c1", "aspirant")] != STRUCTURAL
    assert audit(table, status, 5).passed
    with pytest.raises(ValueError, match="structural cell"):
        unit_table(parents, {"c3": {"aspirant": 1}}, structural=["c3"])


def crafted_two_level_table():
    parents = {"p": None, "d1": "p", "d2": "p", "c1": "d1", "c2": "d1", "c3": "d1", "c4": "d2", "c5": "d2"}
    leaf = {"c1": {"aspirant": 2, "returnee": 30, "departure": 6}, "c2": {"aspirant": 40, "returnee": 1, "departure": 0},
            "c3": {"aspirant": 15, "returnee": 0, "departure": 3}, "c4": {"aspirant": 7, "returnee": 8, "departure": 9},
            "c5": {"aspirant": 50, "returnee": 60, "departure": 4}}
    return unit_table(parents, leaf)


@pytest.mark.parametrize("k", [3, 5, 10])
def test_no_primary_cell_of_a_crafted_two_level_table_is_narrowed(k):
    table = crafted_two_level_table()
    status = protect(table, k).status
    assert set(np.flatnonzero(table.values < k)) == set(np.flatnonzero(status == PRIMARY))
    assert leaks(table, status, k, integer=True) == {"plain": {}, "told": {}}


def real_hierarchy(provinces: set[str] | None = None) -> dict[str, str | None]:
    units = pd.read_csv(REFERENCE_DIR / "vn_2025_units.csv", dtype=str)
    parents = {r.code: (r.parent_code if isinstance(r.parent_code, str) else None) for r in units.itertuples()}
    if provinces is not None:
        parents = {u: p for u, p in parents.items() if u in provinces or p in provinces}
    return parents


def synthetic_counts(parents: dict, records: int, seed: int) -> dict:
    """Records per commune: uneven (log-normal sizes), a fifth of communes with almost nobody; synthetic."""
    rng = np.random.default_rng(seed)
    leaves = sorted(u for u in parents if u not in set(parents.values()))
    size = rng.lognormal(0.0, 1.3, len(leaves))
    size[rng.random(len(leaves)) < 0.2] *= 0.05
    size *= records / size.sum()
    return {u: {kind: int(rng.poisson(s * share)) for kind, share in zip(KINDS, (0.5, 0.3, 0.2), strict=True)}
            for u, s in zip(leaves, size, strict=True)}


@pytest.mark.parametrize("k", [3, 5, 10])
def test_no_primary_cell_of_a_country_like_table_is_narrowed(k):
    """Three real provinces of the 2025 structure (their 212 communes), synthetic counts; every primary cell attacked."""
    parents = real_hierarchy({"44", "46", "48"})
    table = unit_table(parents, synthetic_counts(parents, 6000, seed=k))
    status = protect(table, k).status
    assert (status == PRIMARY).sum() > 100 and (status == COMPLEMENTARY).sum() > 10
    assert leaks(table, status, k) == {"plain": {}, "told": {}}


def test_the_whole_country_passes_its_audit_and_the_intruder():
    """3,321 communes x 4 kinds, a year of synthetic records, k = 5: the audit checks every cell, the intruder a sample.

    (k = 3 and 10 on the whole country, and the old structure's 10,047 communes, are in bench/suppression.py.)
    """
    k = 5
    parents = real_hierarchy()
    table = unit_table(parents, synthetic_counts(parents, 400_000, seed=105))
    pattern = protect(table, k)
    assert pattern.report.passed and pattern.report.primary == int((table.values < k).sum())
    assert leaks(table, pattern.status, k, sample=120) == {"plain": {}, "told": {}}


# -- the audit itself ------------------------------------------------------------------------------------
def test_the_audit_finds_what_the_intruder_finds():
    table = crafted_two_level_table()
    naive = primary_status(table, 5)
    report = audit(table, naive, 5)
    found = leaks(table, naive, 5)
    assert not report.passed
    assert {(f.unit, f.measure) for f in report.failures if f.model == "plain"} == set(found["plain"])
    assert {(f.unit, f.measure) for f in report.failures if f.model == "rule"} == set(found["told"])
    shown_small = naive.copy()
    shown_small[table.cell("c1", "aspirant")] = SHOWN
    assert any("not hidden" in f.reason for f in audit(table, shown_small, 5).failures)


def test_patterns_only_grow_across_revisions_and_k():
    table = crafted_two_level_table()
    five = protect(table, 5)
    ten = protect(table, 10, forced_hidden=five.hidden)
    assert (ten.hidden >= five.hidden).all()
    # A revision with two late records: the first pattern kept, audited together with the first release.
    parents = parents_of(table)
    leaf = {"c1": {"aspirant": 3, "returnee": 30, "departure": 6}, "c2": {"aspirant": 40, "returnee": 1, "departure": 0},
            "c3": {"aspirant": 15, "returnee": 0, "departure": 3}, "c4": {"aspirant": 7, "returnee": 8, "departure": 10},
            "c5": {"aspirant": 50, "returnee": 60, "departure": 4}}
    later = unit_table(parents, leaf)
    revised = protect(later, 5, forced_hidden=five.hidden)
    assert (revised.hidden >= five.hidden).all()
    assert joint_audit([table, later], [five.status, revised.status], 5).passed
    # Had the revision been suppressed afresh, showing a cell the first release hid, the pair would fail.
    fresh = five.status.copy()
    shown_again = np.flatnonzero(five.status == COMPLEMENTARY)[0]
    fresh[shown_again] = SHOWN
    assert not joint_audit([table, later], [five.status, fresh], 5).passed


def test_hierarchical_tables_refuse_counts_that_do_not_add_up():
    with pytest.raises(ValueError, match="do not add up"):
        hierarchical_table({"d": None, "a": "d"}, ["n"], {}, {("d", "n"): 3, ("a", "n"): 2})


def test_k_is_a_setting_per_role_and_never_below_three(monkeypatch):
    assert suppression_k(Role.police_analyst) == 10
    assert suppression_k(Role.leader) == 5 and suppression_k(Role.planner) == 5
    assert suppression_k(Role.officer) is None
    monkeypatch.setenv("LABOUR_ATLAS_SUPPRESS_BELOW_LEADER", "2")
    with pytest.raises(ValueError, match="greater than or equal to 3"):
        Settings()
    with pytest.raises(ValueError, match="k must be at least 3"):
        protect(crafted_two_level_table(), 2)


def test_the_audit_believes_no_perturbation_it_cannot_check():
    """The chooser hands its perturbations to the audit to spare programs; a wrong one proves nothing."""
    table = hierarchical_table({"d": None, "a": "d", "b": "d"}, ["n"], {}, {("d", "n"): 40, ("a", "n"): 3, ("b", "n"): 37})
    a, b = table.cell("a", "n"), table.cell("b", "n")
    naive = primary_status(table, 5)
    alone = {(a, "high"): (np.array([a]), np.array([2.0])), (a, "low"): (np.array([a]), np.array([-3.0]))}
    assert not audit(table, naive, 5, certificates=alone).passed  # breaks d = a + b
    through_shown = {(a, "high"): (np.array([a, b]), np.array([2.0, -2.0])), (a, "low"): (np.array([a, b]), np.array([-3.0, 3.0]))}
    assert not audit(table, naive, 5, certificates=through_shown).passed  # b is shown: it cannot move
    status = naive.copy()
    status[b] = COMPLEMENTARY
    assert audit(table, status, 5, certificates=through_shown).passed
