"""Logging filters named in settings.LOGGING."""

import logging


class DropMessages(logging.Filter):
    """Drops the records whose message template starts with one of `prefixes` (a library's
    routine line that has no logger of its own to silence), keeps every other record."""

    def __init__(self, prefixes: list[str]) -> None:
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(self.prefixes))
