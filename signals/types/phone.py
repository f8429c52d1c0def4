from __future__ import annotations

from signals.types import register
from signals.types.base import IdentifierType


@register
class PhoneType(IdentifierType):
    name = "phone"
    value_format = "SHA-256 hex of the E.164 phone number"
