"""Signals other apps receive in their AppConfig.ready(), so this app imports none of them.

message_recorded(message_id): sent after the transaction that recorded a new message
commits (handoffs advance on it, scoring queues tone checks).
"""

from django.dispatch import Signal

message_recorded = Signal()
