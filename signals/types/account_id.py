from __future__ import annotations

from signals.types import register
from signals.types.base import IdentifierType


@register
class AccountIdType(IdentifierType):
    name = "account_id"
    value_format = "SHA-256 hex of 'platform:id'"
