from __future__ import annotations

from signals.types import register
from signals.types.base import IdentifierType


@register
class UsernameType(IdentifierType):
    name = "username"
    value_format = "SHA-256 hex of 'platform:username' (NFKC, casefolded, leading @ dropped)"
