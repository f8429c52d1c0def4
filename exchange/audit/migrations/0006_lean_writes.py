"""Cheaper audit writes, which every request makes.

- ``action`` and ``actor_member`` lose their single-column indexes (and PostgreSQL's
  ``LIKE`` twins): the ``(action, seq)`` and ``(actor_member, seq)`` indexes answer every
  lookup by either, so each event was written into four indexes nobody read.
- On PostgreSQL built with LZ4, ``disclosed`` is compressed with LZ4 instead of the default
  pglz. A feed page's event lists up to 10,000 signal ids; pglz took about 12 ms to compress
  that, inside the request, and LZ4 about 1 ms. Rows already written keep their compression.
"""

from django.db import migrations, models


def _has_lz4(cursor) -> bool:
    cursor.execute(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    row = cursor.fetchone()
    return bool(row and row[0])


def _compression(method: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            if _has_lz4(cursor):
                cursor.execute(
                    f"ALTER TABLE audit_auditevent ALTER COLUMN disclosed SET COMPRESSION {method}"
                )

    return apply


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_owners_gin_index")]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="actor_member",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(_compression("lz4"), _compression("default")),
    ]
