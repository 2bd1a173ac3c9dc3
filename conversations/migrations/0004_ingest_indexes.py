import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Indexes for the ingest path: a partial index for AI steps waiting for the message
    they produced, and no separate index on Message.conversation (message_timeline leads
    with it). Only the index is dropped: Django's own AlterField would also drop and re-add
    the foreign key, re-validating every message under an exclusive lock."""

    dependencies = [
        ("conversations", "0003_email_threads"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="conversation",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="conversations.conversation",
                    ),
                ),
            ],
            database_operations=[
                # The name Django gave the index in 0001 (on SQLite and PostgreSQL alike).
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS conversations_message_conversation_id_f1a2d5e9",
                    reverse_sql=(
                        "CREATE INDEX conversations_message_conversation_id_f1a2d5e9 "
                        "ON conversations_message (conversation_id)"
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="aistep",
            index=models.Index(
                condition=models.Q(("message__isnull", True)),
                fields=["message_provider", "message_provider_id"],
                name="ai_step_waiting",
            ),
        ),
    ]
