"""Who may use the Django admin, and for what. The admin classes ask these functions only.

- exchange administrators (``Role.EXCHANGE_ADMIN`` or superusers) manage everything except
  the audit log, which they may only read;
- auditors (``Role.AUDITOR``) read audit events, members and signals, export the audit log
  and verify its chain;
- member users (``member_admin``, ``member_analyst``) have no admin access, even if someone
  marks them as staff.
"""

from __future__ import annotations

from typing import Any

from accounts.models import Role

STAFF_ROLES = frozenset({Role.EXCHANGE_ADMIN, Role.AUDITOR})


def _staff(user: Any) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
    )


def is_exchange_admin(user: Any) -> bool:
    role = getattr(user, "role", None)
    # ``createsuperuser`` makes a user with the default role: treat it as an administrator
    # unless it belongs to a member or is an auditor.
    superuser = (
        getattr(user, "is_superuser", False)
        and getattr(user, "member_id", None) is None
        and role != Role.AUDITOR
    )
    return _staff(user) and (role == Role.EXCHANGE_ADMIN or superuser)


def is_auditor(user: Any) -> bool:
    return _staff(user) and getattr(user, "role", None) == Role.AUDITOR


def has_admin_access(user: Any) -> bool:
    """Staff of the exchange: the only users the admin site lets in."""
    return is_exchange_admin(user) or is_auditor(user)
