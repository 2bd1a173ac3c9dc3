"""The access log is append-only in the database too (PostgreSQL): an UPDATE may only clear
the user of a removed account (the foreign key's SET NULL), and DELETE is refused.
TRUNCATE (a test database's flush) is not affected."""

from django.db import migrations

TABLE = "audit_accessentry"

CREATE = f"""
CREATE OR REPLACE FUNCTION audit_accessentry_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'access log entries are never deleted';
    END IF;
    IF NEW.user_id IS NULL AND (to_jsonb(NEW) - 'user_id') = (to_jsonb(OLD) - 'user_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'access log entries are never changed';
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_accessentry_append_only ON {TABLE};
CREATE TRIGGER audit_accessentry_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_accessentry_append_only();
"""

DROP = f"""
DROP TRIGGER IF EXISTS audit_accessentry_append_only ON {TABLE};
DROP FUNCTION IF EXISTS audit_accessentry_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_quality_daily")]
    operations = [migrations.RunPython(forwards, backwards)]
