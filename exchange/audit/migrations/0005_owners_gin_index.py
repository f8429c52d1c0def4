"""On PostgreSQL, a GIN index on ``owners`` so a member's audit export (events disclosing its
signals: ``owners @> '["slug"]'``) does not scan the whole log."""

from django.db import migrations


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "CREATE INDEX IF NOT EXISTS audit_auditevent_owners_gin "
                "ON audit_auditevent USING gin (owners jsonb_path_ops)"
            )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS audit_auditevent_owners_gin")


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_checkpoints_archives")]
    operations = [migrations.RunPython(install, uninstall)]
