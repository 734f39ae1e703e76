"""Typed reading of scalar values, shared by parameters, condition values and context values.

Each reader raises ``ValueError`` with a short phrase ("'abc' is not a number") that the caller
places in a message naming the statement, operator and key.
"""

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Final

Number = int | float
Scalar = str | int | float | bool | datetime
"""A single value as it appears in a condition or a context after typing."""

_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER: Final = re.compile(r"[+-]?\d+")


def describe(value: object) -> str:
    """A value as a person reads it in an error message."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return render(value)
    if value is None:
        return "null"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return f"a {type(value).__name__}"


def to_number(value: object) -> Number:
    """Read an int/float, a Decimal (DynamoDB numbers) or a numeric string; reject bool, NaN, ∞."""
    if isinstance(value, bool):
        raise ValueError(f"{describe(value)} is a boolean, not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite number")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        if _NUMBER.fullmatch(text):
            number = float(text)
            if math.isfinite(number):
                return number
    raise ValueError(f"{describe(value)} is not a number")


def to_datetime(value: object) -> datetime:
    """Read an aware UTC datetime from a datetime/date, epoch seconds (number or numeric string) or
    an ISO-8601 string. Naive datetimes and ISO strings without an offset are taken as UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return _from_epoch(value)
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            return _from_epoch(float(text))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return to_datetime(parsed)
    raise ValueError(
        f"{describe(value)} is not a date (use ISO 8601, e.g. 2025-01-31T00:00:00Z, or epoch seconds)"
    )


def _from_epoch(seconds: float | Decimal) -> datetime:
    try:
        return datetime.fromtimestamp(float(seconds), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{seconds} is out of range for epoch seconds") from None


def to_bool(value: object) -> bool:
    """Read a boolean from a bool or the strings "true"/"false" (any case), as IAM does."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f'{describe(value)} is not "true" or "false"')


def render(value: object) -> str:
    """The string form used by the String/Arn operators and inside ``"prefix-${Ref}"``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        utc = to_datetime(value)
        return utc.isoformat().replace("+00:00", "Z")
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise ValueError(f"{describe(value)} is not a scalar value")
