"""Signals other apps receive in their AppConfig.ready(), so this app imports none of them.

journey_recorded(messages, conversation_events, events_known): sent by
`services.events_apply` inside the ingest transaction, once per applied batch, with the
Message rows the batch recorded and every ConversationEvent row it recorded or found again
(`events_known`: the ids of those kept before the batch, e.g. a redelivery).
Receivers must be idempotent; the handoff machine advances on it, so a handoff never lags
behind the messages that moved it. A receiver may return a `dashboard_marks.DayMarks` (the
dashboard days it changed): the batch writes them with its own, once.

message_recorded(message_id, message_ids): sent after the transaction that recorded new
messages commits (scoring queues tone checks). `message_ids` lists every new message of that
transaction when a batch recorded several at once (sent once, with `message_id` the first);
otherwise it is absent and `message_id` is the one message.

content_purged(message_ids): sent by `retention.retention_purge` inside the transaction that
emptied those messages' bodies; receivers remove their own copies of the text (scoring: the
quoted words in tone-score explanations).

admin_record_viewed(request, object_id, conversation_id): sent by the admin's read-only
record pages (`admin.ReadOnlyAdmin.change_view`) when someone opens one record; the audit
app writes it to its access log.
"""

from django.dispatch import Signal

journey_recorded = Signal()
message_recorded = Signal()
content_purged = Signal()
admin_record_viewed = Signal()
