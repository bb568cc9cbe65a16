"""The directory database (SQLAlchemy 2 ORM; SQLite by default, PostgreSQL in production).

Tables
* ``departments`` — providers (信息资源提供方) and their codes.
* ``resource_codes`` — the code register: one row per resource ever published; a code is never
  changed or reused (前段码 ``prefix`` / 后段码 ``seq``).
* ``entries`` — the current directory entry of each resource, every guideline element as a column;
  ``version`` counts metadata changes; ``retired_at`` is set when the registration disappears.
* ``entry_items`` — 信息项 of an entry, with the guideline data type and length.
* ``publications`` — each publication is a version of the directory.
* ``publication_entries`` — the snapshot of every entry in a publication (the element dict, as
  exported), so any two versions can be compared.
* ``changes`` — what a publication changed (added / modified / removed) with element-level details.
* ``entry_facts`` — live facts read from the lake at each publication (the latest publication's
  facts are the live ones; older rows are history).

The data service's state (:mod:`citylake.stages.share`, served by ``citylake serve``):

* ``api_keys`` — the keys departments and administrators call with; only a key's SHA-256 is kept
  (a key is 32 random bytes, so its digest cannot be reversed by guessing) and its first characters
  to tell keys apart;
* ``share_requests`` — a department's request for a 有条件共享 resource (fields, purpose), and the
  provider's decision; an approved request is the grant the rows call works under;
* ``audit_log`` — every answer to a data request: who, which resource, which fields, how many rows,
  when, under which grant.

The schema is created and upgraded by Alembic (``citylake/stages/publish/migrations``); keep this module and the
migration scripts in step (a test compares them).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)  # registration folder, e.g. scjg
    name: Mapped[str] = mapped_column(String(200))  # department_name
    provider_name: Mapped[str] = mapped_column(String(200))  # 信息资源提供方
    provider_code: Mapped[str] = mapped_column(String(32))  # 信息资源提供方代码 (USCC or organ code)

    entries: Mapped[list[Entry]] = relationship(back_populates="department")


class ResourceCode(Base):
    __tablename__ = "resource_codes"
    __table_args__ = (UniqueConstraint("prefix", "seq", name="uq_resource_codes_prefix_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # 前段码 类+项+目+细目
    seq: Mapped[int] = mapped_column(Integer)  # 后段码
    code: Mapped[str] = mapped_column(String(32), unique=True)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Entry(Base):
    __tablename__ = "entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), unique=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # 信息资源代码
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    content_hash: Mapped[str] = mapped_column(String(64))
    # 1 信息资源分类
    category: Mapped[str] = mapped_column(String(1))  # 类
    item: Mapped[str] = mapped_column(String(2))  # 项
    catalog: Mapped[str] = mapped_column(String(3))  # 目
    detail: Mapped[str] = mapped_column(String(6), default="")  # 细目
    business: Mapped[str | None] = mapped_column(String(400))  # 关联业务事项
    # 2 名称, 4/5 提供方, 6 摘要
    name: Mapped[str] = mapped_column(String(200))
    provider_name: Mapped[str] = mapped_column(String(200))
    provider_code: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    # 7 格式
    format_category: Mapped[str] = mapped_column(String(20))
    format_type: Mapped[str] = mapped_column(String(40))
    format_description: Mapped[str | None] = mapped_column(Text)
    # 9 共享属性
    share_type: Mapped[str] = mapped_column(String(10))
    share_condition: Mapped[str | None] = mapped_column(Text)  # condition or legal basis
    share_method_category: Mapped[str | None] = mapped_column(String(20))  # None for 不予共享
    share_method_type: Mapped[str | None] = mapped_column(String(10))
    # 10 开放属性
    is_open: Mapped[bool] = mapped_column(Boolean)
    open_condition: Mapped[str | None] = mapped_column(Text)
    # 11 更新周期, 12 发布日期, 13 关联资源代码
    update_cycle: Mapped[str] = mapped_column(String(10))
    publish_date: Mapped[date] = mapped_column(Date)
    related_codes: Mapped[list] = mapped_column(JSON, default=list)
    first_published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    department: Mapped[Department] = relationship(back_populates="entries")
    items: Mapped[list[EntryItem]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", order_by="EntryItem.position"
    )


class EntryItem(Base):
    """8 信息项信息."""

    __tablename__ = "entry_items"
    __table_args__ = (UniqueConstraint("entry_id", "field", name="uq_entry_items_entry_field"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(64))  # canonical column name
    item_name: Mapped[str] = mapped_column(String(200))  # 信息项名称
    data_type: Mapped[str] = mapped_column(String(1))  # C N Y D T L M G B I F
    data_type_name: Mapped[str] = mapped_column(String(10))  # 字符型 …
    data_length: Mapped[int | None] = mapped_column(Integer)
    sensitivity: Mapped[str] = mapped_column(String(16))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    is_key: Mapped[bool] = mapped_column(Boolean, default=False)
    unit: Mapped[str | None] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)

    entry: Mapped[Entry] = relationship(back_populates="items")


class Publication(Base):
    __tablename__ = "publications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    entry_count: Mapped[int] = mapped_column(Integer)
    changed_count: Mapped[int] = mapped_column(Integer)
    lake_uri: Mapped[str] = mapped_column(String(1000))
    outputs: Mapped[dict] = mapped_column(JSON, default=dict)

    entries: Mapped[list[PublicationEntry]] = relationship(
        back_populates="publication", cascade="all, delete-orphan", order_by="PublicationEntry.code"
    )
    changes: Mapped[list[Change]] = relationship(
        back_populates="publication", cascade="all, delete-orphan", order_by="Change.id"
    )
    facts: Mapped[list[EntryFacts]] = relationship(
        back_populates="publication", cascade="all, delete-orphan", order_by="EntryFacts.resource"
    )


class PublicationEntry(Base):
    __tablename__ = "publication_entries"
    __table_args__ = (UniqueConstraint("publication_id", "resource", name="uq_publication_entries_pub_res"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publications.id", ondelete="CASCADE"))
    resource: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))
    entry_version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    snapshot: Mapped[dict] = mapped_column(JSON)

    publication: Mapped[Publication] = relationship(back_populates="entries")


class Change(Base):
    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publications.id", ondelete="CASCADE"))
    resource: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(10))  # added / modified / removed
    details: Mapped[list] = mapped_column(JSON, default=list)  # [{element, old, new}]

    publication: Mapped[Publication] = relationship(back_populates="changes")


class EntryFacts(Base):
    __tablename__ = "entry_facts"
    __table_args__ = (UniqueConstraint("publication_id", "resource", name="uq_entry_facts_pub_res"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publications.id", ondelete="CASCADE"))
    resource: Mapped[str] = mapped_column(String(64))
    has_data: Mapped[bool] = mapped_column(Boolean)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    last_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    batches_received: Mapped[int] = mapped_column(Integer, default=0)
    quality_latest_pass_rate: Mapped[float | None] = mapped_column(Float)
    quality_recent_pass_rate: Mapped[float | None] = mapped_column(Float)
    quarantine_rate: Mapped[float | None] = mapped_column(Float)
    freshness: Mapped[str] = mapped_column(String(16))
    drift: Mapped[bool] = mapped_column(Boolean, default=False)
    facts: Mapped[dict] = mapped_column(JSON)  # everything, as ResourceFacts.to_dict()

    publication: Mapped[Publication] = relationship(back_populates="facts")


# ---- the data service (citylake.stages.share) ---------------------------------------------------
class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))  # a department code, or "admin"
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the key
    key_prefix: Mapped[str] = mapped_column(String(16))  # the key's first characters, to tell keys apart
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ShareRequest(Base):
    __tablename__ = "share_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64))
    consumer: Mapped[str] = mapped_column(String(64))  # the asking department
    provider: Mapped[str] = mapped_column(String(64))  # the providing department
    fields: Mapped[list] = mapped_column(JSON, default=list)
    unmasked: Mapped[list] = mapped_column(JSON, default=list)  # personal fields asked for in the clear
    purpose: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # pending / approved / rejected
    reason: Mapped[str | None] = mapped_column(Text)  # the decision's reason
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(64))


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    caller: Mapped[str] = mapped_column(String(64))  # a department code, "admin" or "public"
    action: Mapped[str] = mapped_column(String(32))  # rows / download / open_rows / open_download …
    resource: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(64))
    fields: Mapped[list] = mapped_column(JSON, default=list)
    rows: Mapped[int] = mapped_column(Integer)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("share_requests.id"))
    basis: Mapped[str] = mapped_column(String(20))  # own / 无条件共享 / grant / open
