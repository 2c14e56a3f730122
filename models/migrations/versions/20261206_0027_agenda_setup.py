"""agenda_setup: doctors serve several specialties (doctor_specialties, filled from
doctors.specialty_id), accept listed convênios and are bookable between optional active dates
(a deactivated doctor ends yesterday)

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-06 00:00:00
"""

from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "doctor_specialties",
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("specialty_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["doctor_id"],
            ["doctors.id"],
            name="fk_doctor_specialties_doctor_id_doctors",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["specialty_id"],
            ["specialties.id"],
            name="fk_doctor_specialties_specialty_id_specialties",
        ),
        sa.PrimaryKeyConstraint("doctor_id", "specialty_id", name="pk_doctor_specialties"),
    )
    op.create_index("ix_doctor_specialties_specialty_id", "doctor_specialties", ["specialty_id"])
    op.execute(
        "INSERT INTO doctor_specialties (doctor_id, specialty_id) "
        "SELECT id, specialty_id FROM doctors"
    )
    with op.batch_alter_table("doctors") as batch:
        batch.add_column(sa.Column("convenios", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("active_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("active_until", sa.Date(), nullable=True))
    op.execute("UPDATE doctors SET convenios = '[]'")
    yesterday = date.today() - timedelta(days=1)
    op.execute(
        sa.text("UPDATE doctors SET active_until = :day WHERE NOT is_active").bindparams(
            day=yesterday
        )
    )
    with op.batch_alter_table("doctors") as batch:
        batch.alter_column("convenios", existing_type=sa.JSON(), nullable=False)
        batch.drop_index("ix_doctors_specialty_id")
        batch.drop_constraint("fk_doctors_specialty_id_specialties", type_="foreignkey")
        batch.drop_column("specialty_id")
        batch.drop_column("is_active")


def downgrade() -> None:
    with op.batch_alter_table("doctors") as batch:
        batch.add_column(sa.Column("specialty_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("is_active", sa.Boolean(), nullable=True))
    op.execute(
        "UPDATE doctors SET specialty_id = (SELECT MIN(specialty_id) FROM doctor_specialties "
        "WHERE doctor_specialties.doctor_id = doctors.id)"
    )
    op.execute(
        sa.text(
            "UPDATE doctors SET is_active = (active_until IS NULL OR active_until >= :today)"
        ).bindparams(today=date.today())
    )
    with op.batch_alter_table("doctors") as batch:
        batch.alter_column("specialty_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("is_active", existing_type=sa.Boolean(), nullable=False)
        batch.create_foreign_key(
            "fk_doctors_specialty_id_specialties", "specialties", ["specialty_id"], ["id"]
        )
        batch.create_index("ix_doctors_specialty_id", ["specialty_id"])
        batch.drop_column("active_until")
        batch.drop_column("active_from")
        batch.drop_column("convenios")
    op.drop_index("ix_doctor_specialties_specialty_id", "doctor_specialties")
    op.drop_table("doctor_specialties")
