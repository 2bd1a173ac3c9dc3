"""JSON text as Python, fast and exact: orjson, and the standard library for what orjson
refuses and Python's json takes (NaN, Infinity, integers past 64 bits, which jsonb keeps):
the same values either way. Stored event bodies and JSON columns read as text use it."""

import json
from typing import Any

import orjson


def json_loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
