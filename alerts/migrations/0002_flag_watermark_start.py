"""Alerts begin with the flags raised after the app is installed: the flag scan's
watermark starts at the newest flag there is now."""

from django.db import migrations
from django.db.models import Max


def start(apps, schema_editor):
    Flag = apps.get_model("conversations", "Flag")
    FlagWatermark = apps.get_model("alerts", "FlagWatermark")
    top = Flag.objects.aggregate(top=Max("pk"))["top"] or 0
    FlagWatermark.objects.update_or_create(pk=1, defaults={"last_id": top, "gaps": {}})


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_rules_alerts_outbox")]
    operations = [migrations.RunPython(start, migrations.RunPython.noop)]
