"""initial directory schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('departments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('provider_name', sa.String(length=200), nullable=False),
    sa.Column('provider_code', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departments')),
    sa.UniqueConstraint('slug', name=op.f('uq_departments_slug'))
    )
    op.create_table('publications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('entry_count', sa.Integer(), nullable=False),
    sa.Column('changed_count', sa.Integer(), nullable=False),
    sa.Column('lake_uri', sa.String(length=1000), nullable=False),
    sa.Column('outputs', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_publications')),
    sa.UniqueConstraint('version', name=op.f('uq_publications_version'))
    )
    op.create_table('resource_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resource', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_codes')),
    sa.UniqueConstraint('code', name=op.f('uq_resource_codes_code')),
    sa.UniqueConstraint('prefix', 'seq', name='uq_resource_codes_prefix_seq'),
    sa.UniqueConstraint('resource', name=op.f('uq_resource_codes_resource'))
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("publication_id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["publications.id"],
            name=op.f("fk_changes_publication_id_publications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=1), nullable=False),
        sa.Column("item", sa.String(length=2), nullable=False),
        sa.Column("catalog", sa.String(length=3), nullable=False),
        sa.Column("detail", sa.String(length=6), nullable=False),
        sa.Column("business", sa.String(length=400), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("provider_name", sa.String(length=200), nullable=False),
        sa.Column("provider_code", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("format_category", sa.String(length=20), nullable=False),
        sa.Column("format_type", sa.String(length=40), nullable=False),
        sa.Column("format_description", sa.Text(), nullable=True),
        sa.Column("share_type", sa.String(length=10), nullable=False),
        sa.Column("share_condition", sa.Text(), nullable=True),
        sa.Column("share_method_category", sa.String(length=20), nullable=True),
        sa.Column("share_method_type", sa.String(length=10), nullable=True),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("open_condition", sa.Text(), nullable=True),
        sa.Column("update_cycle", sa.String(length=10), nullable=False),
        sa.Column("publish_date", sa.Date(), nullable=False),
        sa.Column("related_codes", sa.JSON(), nullable=False),
        sa.Column("first_published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_entries_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
        sa.UniqueConstraint("code", name=op.f("uq_entries_code")),
        sa.UniqueConstraint("resource", name=op.f("uq_entries_resource")),
    )
    op.create_table(
        "entry_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("publication_id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("has_data", sa.Boolean(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("last_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("batches_received", sa.Integer(), nullable=False),
        sa.Column("quality_latest_pass_rate", sa.Float(), nullable=True),
        sa.Column("quality_recent_pass_rate", sa.Float(), nullable=True),
        sa.Column("quarantine_rate", sa.Float(), nullable=True),
        sa.Column("freshness", sa.String(length=16), nullable=False),
        sa.Column("drift", sa.Boolean(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["publications.id"],
            name=op.f("fk_entry_facts_publication_id_publications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entry_facts")),
        sa.UniqueConstraint("publication_id", "resource", name="uq_entry_facts_pub_res"),
    )
    op.create_table(
        "publication_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("publication_id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("entry_version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["publications.id"],
            name=op.f("fk_publication_entries_publication_id_publications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publication_entries")),
        sa.UniqueConstraint("publication_id", "resource", name="uq_publication_entries_pub_res"),
    )
    op.create_table(
        "entry_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("item_name", sa.String(length=200), nullable=False),
        sa.Column("data_type", sa.String(length=1), nullable=False),
        sa.Column("data_type_name", sa.String(length=10), nullable=False),
        sa.Column("data_length", sa.Integer(), nullable=True),
        sa.Column("sensitivity", sa.String(length=16), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("is_key", sa.Boolean(), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_entry_items_entry_id_entries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entry_items")),
        sa.UniqueConstraint("entry_id", "field", name="uq_entry_items_entry_field"),
    )


def downgrade() -> None:
    op.drop_table("entry_items")
    op.drop_table("publication_entries")
    op.drop_table("entry_facts")
    op.drop_table("entries")
    op.drop_table("changes")
    op.drop_table("resource_codes")
    op.drop_table("publications")
    op.drop_table("departments")
