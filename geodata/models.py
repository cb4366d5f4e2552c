"""ORM models of the geographic core (tables created by the Alembic migrations)."""

from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import Computed, Date, Float, ForeignKey, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class BoundaryStructure(Base):
    """A version of the administrative structure (``pre2025`` or ``2025``).

    Validity is half-open: ``valid_from <= date < valid_to`` (``valid_to`` NULL
    for the structure in force).
    """

    __tablename__ = "boundary_structure"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    levels: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)


class AdminUnit(Base):
    """A province, district or commune of one boundary structure."""

    __tablename__ = "admin_unit"

    structure: Mapped[str] = mapped_column(ForeignKey("boundary_structure.name"), primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    unit_type: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True)
    geom_web = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True)
    geom_quality: Mapped[str | None] = mapped_column(Text)
    geom_source: Mapped[str | None] = mapped_column(Text)
    centre = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    name_folded: Mapped[str] = mapped_column(Text, Computed("la_fold(name)"))


class UnitCrosswalk(Base):
    """Link of an old unit to a new unit, with the share of the old unit's area."""

    __tablename__ = "unit_crosswalk"

    old_structure: Mapped[str] = mapped_column(Text, primary_key=True)
    old_code: Mapped[str] = mapped_column(Text, primary_key=True)
    new_structure: Mapped[str] = mapped_column(Text, primary_key=True)
    new_code: Mapped[str] = mapped_column(Text, primary_key=True)
    level: Mapped[str] = mapped_column(String)
    relation: Mapped[str] = mapped_column(Text)
    area_share: Mapped[float] = mapped_column(Float)
    share_method: Mapped[str] = mapped_column(Text)
