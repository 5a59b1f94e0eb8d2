"""SQLAlchemy 2 + GeoAlchemy2 models of the schema (see ``docs/architecture.md``).

Geometries are stored in SRID 4326; metric work happens in a projected CRS in
``gis/``. The schema itself is created by the Alembic migrations in
``migrations/``; these models mirror it for queries and must be kept in step.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Generation(Base):
    """A version of the whole boundary set (MapIt's idea); exactly one is active."""

    __tablename__ = "generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="false")
    note: Mapped[str | None] = mapped_column(Text)


class Area(Base):
    """One unit of the hierarchy, valid from generation_low to generation_high inclusive."""

    __tablename__ = "area"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(String(32))
    generation_low: Mapped[int] = mapped_column(ForeignKey("generation.id"))
    generation_high: Mapped[int] = mapped_column(ForeignKey("generation.id"))
    population: Mapped[int | None] = mapped_column(Integer)
    households: Mapped[int | None] = mapped_column(Integer)
    responsible: Mapped[str | None] = mapped_column(Text)
    area_m2: Mapped[float | None] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))


class Staff(Base):
    """A person of a roster serving one area of a generation (mirrors migration 0006)."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(32))
    area_code: Mapped[str] = mapped_column(String(32))
    generation_id: Mapped[int] = mapped_column(ForeignKey("generation.id"))
    phone: Mapped[str | None] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id", ondelete="SET NULL"))


class StaffRole(Base):
    """A role a deployment added to ``gis.staff.DEFAULT_ROLES`` (migration 0006)."""

    __tablename__ = "staff_role"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    staffs: Mapped[str | None] = mapped_column(String(16))
    words: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")


class ImportBatch(Base):
    """One file or request loaded (or refused) as a whole."""

    __tablename__ = "import_batch"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(Text)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[str | None] = mapped_column(String(16))
    generation_id: Mapped[int | None] = mapped_column(ForeignKey("generation.id"))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rows_in: Mapped[int] = mapped_column(Integer, server_default="0")
    rows_stored: Mapped[int] = mapped_column(Integer, server_default="0")
    rows_rejected: Mapped[int] = mapped_column(Integer, server_default="0")
    rows_unlocated: Mapped[int] = mapped_column(Integer, server_default="0")
    report: Mapped[dict | None] = mapped_column(JSONB)


class RejectedRow(Base):
    __tablename__ = "rejected_row"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id", ondelete="CASCADE"))
    row_number: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict | None] = mapped_column(JSONB)


class Incident(Base):
    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    category: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), server_default="reported")
    handling_level: Mapped[str | None] = mapped_column(String(16))
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    raw_lon: Mapped[float | None] = mapped_column(Float)
    raw_lat: Mapped[float | None] = mapped_column(Float)
    raw_crs: Mapped[str | None] = mapped_column(String(16))
    location: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    location_status: Mapped[str] = mapped_column(String(16))
    unlocated_reason: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))
    # the taxonomy version the category was chosen from (NULL when uncategorised)
    taxonomy_version: Mapped[int | None] = mapped_column(ForeignKey("taxonomy_version.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # who handles it (migration 0009): a staff member of its grid, or a department
    assignee_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="SET NULL")
    )
    assignee_name: Mapped[str | None] = mapped_column(Text)  # kept when the roster is replaced
    department_code: Mapped[str | None] = mapped_column(
        ForeignKey("department.code", onupdate="CASCADE")
    )
    # reported_at + the deadline of its category in its taxonomy version
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # raised by every transition: a stale client's action is refused (optimistic concurrency)
    version: Mapped[int] = mapped_column(Integer, server_default="1")


class Department(Base):
    """A functional department (委办局) a street may whistle (吹哨) for (migration 0009)."""

    __tablename__ = "department"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IncidentWhistle(Base):
    """A department whistled for an incident, and when it reported in by handling (报到)."""

    __tablename__ = "incident_whistle"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True
    )
    department_code: Mapped[str] = mapped_column(
        ForeignKey("department.code", onupdate="CASCADE"), primary_key=True
    )
    whistled_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    report_note: Mapped[str | None] = mapped_column(Text)


class TaxonomyVersion(Base):
    """One imported taxonomy (mirrors migration 0005); the newest is the one in use."""

    __tablename__ = "taxonomy_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    items: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TaxonomyItem(Base):
    """A category of one taxonomy version, with its major class and handling deadline."""

    __tablename__ = "taxonomy_item"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("taxonomy_version.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    major_code: Mapped[str] = mapped_column(String(16))
    major_name_zh: Mapped[str] = mapped_column(Text)
    major_name_en: Mapped[str] = mapped_column(Text)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    deadline_hours: Mapped[int] = mapped_column(Integer)


class IncidentAssignment(Base):
    """An incident's assignment under one generation.

    The row of the active generation is the current assignment (see the view
    ``incident_current``); rows of other generations are its history.
    """

    __tablename__ = "incident_assignment"

    # No ForeignKey here: see migration 0001 (bulk COPY speed; a trigger cascades deletes).
    generation_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    street_code: Mapped[str | None] = mapped_column(String(32))
    community_code: Mapped[str | None] = mapped_column(String(32))
    grid_code: Mapped[str | None] = mapped_column(String(32))
    micro_grid_code: Mapped[str | None] = mapped_column(String(32))
    assign_status: Mapped[str] = mapped_column(String(16))
    distance_m: Mapped[float | None] = mapped_column(Float)
    assigned_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Lineage(Base):
    """How a redesign maps old grids onto new ones."""

    __tablename__ = "lineage"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    from_generation: Mapped[int] = mapped_column(ForeignKey("generation.id"))
    to_generation: Mapped[int] = mapped_column(ForeignKey("generation.id"))
    old_code: Mapped[str] = mapped_column(String(32))
    new_code: Mapped[str] = mapped_column(String(32))
    area_share: Mapped[float] = mapped_column(Float)
    household_share: Mapped[float | None] = mapped_column(Float)


class AddressPoint(Base):
    """A building or door-plate address of the geocoding gazetteer (WGS84)."""

    __tablename__ = "address_point"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(Text)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    micro_grid_code: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))


class ApiKey(Base):
    """A stored API key (mirrors migration 0003)."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # unified code the key is scoped to; None: the whole territory (migration 0008)
    area: Mapped[str | None] = mapped_column(String(64))


class IncidentStatusLog(Base):
    """One step of an incident through the closed loop (mirrors migration 0003)."""

    __tablename__ = "incident_status_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    from_level: Mapped[str | None] = mapped_column(String(16))
    to_level: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    api_key_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("api_key.id", ondelete="SET NULL")
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # migration 0009: what was done, to which departments or assignee, by which user
    action: Mapped[str | None] = mapped_column(String(16))
    departments: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    assignee_name: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))


class RedesignPlan(Base):
    """What a redesign asked for and scored, one row per plan generation (migration 0004)."""

    __tablename__ = "redesign_plan"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generation.id", ondelete="CASCADE"), unique=True
    )
    source_generation_id: Mapped[int | None] = mapped_column(
        ForeignKey("generation.id", ondelete="SET NULL")
    )
    source_label: Mapped[str] = mapped_column(String(100))
    target: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    weights: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    metrics: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    baseline: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # the incidents the workload was counted over (migration 0006)
    window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    window_incidents: Mapped[int | None] = mapped_column(Integer)


class ThematicLayer(Base):
    """A department's theme (police, market, …) beside one generation (migration 0007)."""

    __tablename__ = "thematic_layer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("generation.id", ondelete="CASCADE"))
    theme: Mapped[str] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("import_batch.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ThematicUnit(Base):
    """One unit of a theme, with the department's own code (migration 0007)."""

    __tablename__ = "thematic_unit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    layer_id: Mapped[int] = mapped_column(ForeignKey("thematic_layer.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(Text)
    area_m2: Mapped[float | None] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))


class AppUser(Base):
    """A person who signs in through /login (migration 0008); the password only as argon2id."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    area: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    password_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class UserSession(Base):
    """A signed-in browser (migration 0008); ``id`` is the SHA-256 of the cookie's token."""

    __tablename__ = "user_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    address: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(Text)


class AuditLog(Base):
    """Who did what, when, from where, and how it ended (migration 0008)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_label: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict | None] = mapped_column(JSONB)
    address: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None] = mapped_column(SmallInteger)


class AssessmentMonth(Base):
    """One generation's incidents of one local month, counted and kept as Arrow streams
    (migration 0012; written and read by ``app.db.stats_rollup``)."""

    __tablename__ = "assessment_month"

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generation.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    terms: Mapped[str] = mapped_column(String(64))
    cells: Mapped[bytes] = mapped_column(LargeBinary)
    closed: Mapped[bytes] = mapped_column(LargeBinary)
    open: Mapped[bytes] = mapped_column(LargeBinary)
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


#: Marks of what changed since the months were counted (migrations 0012, 0013): NULL is
#: every generation or every month; ``grid_code``, one grid's cells of that month ('' for
#: the incidents outside every grid); ``first_id``–``last_id``, the months of those
#: incidents. Written by triggers, consumed by ``app.db.stats_rollup``.
assessment_stale = Table(
    "assessment_stale",
    Base.metadata,
    Column("generation_id", Integer),
    Column("month", Date),
    Column("grid_code", String(32)),
    Column("first_id", BigInteger),
    Column("last_id", BigInteger),
)


#: The console's counts per status, kept by triggers (migration 0014; read and refreshed
#: by ``app.db.kept_counts``): rows of +n/-n summed per key — the totals
#: (``generation_id`` NULL) or a generation's grids; ``status`` NULL marks a key to be
#: counted again; ``delta`` False for a row that folds earlier ones.
incident_count = Table(
    "incident_count",
    Base.metadata,
    Column("generation_id", Integer),
    Column("grid_code", String(32)),
    Column("status", String(16)),
    Column("n", BigInteger, nullable=False, server_default="0"),
    Column("delta", Boolean, nullable=False, server_default="true"),
    Index("incident_count_scope", "generation_id", "grid_code"),
)
