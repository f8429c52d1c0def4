"""Idempotency records keep the answer as the rendered JSON bytes, zlib-compressed, instead of
a JSON document: storing a 10,000-signal answer as ``jsonb`` cost more than the rest of the
request's bookkeeping. Records still inside their replay window are converted."""

import json
import zlib

from django.db import migrations, models


def to_bytes(apps, schema_editor):
    record_model = apps.get_model("signals", "IdempotencyRecord")
    for record in record_model.objects.exclude(response_body=None).iterator():
        text = json.dumps(record.response_body, separators=(",", ":"), ensure_ascii=False)
        record.response = zlib.compress(text.encode(), 1)
        record.save(update_fields=["response"])


def to_document(apps, schema_editor):
    record_model = apps.get_model("signals", "IdempotencyRecord")
    for record in record_model.objects.exclude(response=None).iterator():
        record.response_body = json.loads(zlib.decompress(record.response))
        record.save(update_fields=["response_body"])


class Migration(migrations.Migration):
    dependencies = [("signals", "0004_signal_reference_checks")]
    operations = [
        migrations.AddField(
            model_name="idempotencyrecord",
            name="response",
            field=models.BinaryField(blank=True, null=True),
        ),
        migrations.RunPython(to_bytes, to_document),
        migrations.RemoveField(model_name="idempotencyrecord", name="response_body"),
    ]
