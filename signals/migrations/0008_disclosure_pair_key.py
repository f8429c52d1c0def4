"""A disclosure's key is its (member, signal) pair: no surrogate id, and one index fewer to write
for every signal a feed page, match or webhook discloses."""

from django.db import migrations, models

POSTGRESQL = [
    "ALTER TABLE signals_disclosure DROP CONSTRAINT disclosure_unique_member_signal",
    "ALTER TABLE signals_disclosure DROP COLUMN id",
    "ALTER TABLE signals_disclosure ADD PRIMARY KEY (member_id, signal_id)",
]
# SQLite cannot change a table's key in place: the table is written again.
SQLITE = [
    'CREATE TABLE "signals_disclosure_new" ("member_id" bigint NOT NULL, "signal_id" bigint NOT NULL,'
    ' "channel" varchar(16) NOT NULL, "first_at" datetime NOT NULL,'
    ' PRIMARY KEY ("member_id", "signal_id"))',
    'INSERT INTO "signals_disclosure_new" ("member_id", "signal_id", "channel", "first_at")'
    ' SELECT "member_id", "signal_id", "channel", "first_at" FROM "signals_disclosure"',
    'DROP TABLE "signals_disclosure"',
    'ALTER TABLE "signals_disclosure_new" RENAME TO "signals_disclosure"',
    'CREATE INDEX "signals_disclosure_signal_id_1f18b9f8" ON "signals_disclosure" ("signal_id")',
]


def pair_key(apps, schema_editor):
    statements = POSTGRESQL if schema_editor.connection.vendor == "postgresql" else SQLITE
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("signals", "0007_disclosure_without_foreign_keys"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(pair_key)],
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="disclosure", name="disclosure_unique_member_signal"
                ),
                migrations.RemoveField(model_name="disclosure", name="id"),
                migrations.AddField(
                    model_name="disclosure",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "member",
                        "signal",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
            ],
        ),
    ]
