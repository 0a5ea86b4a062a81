"""Views of governance objects for the API and the console."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.approval import Approval
from domain.freeze import occurrence_at
from domain.permissions import Caller


def approval_view(approval: Approval, caller: Caller | None, position: int) -> dict[str, Any]:
    may = caller is not None and approval.may_approve(caller)
    return {**approval.view(), "may_decide": may, "position": position}


def window_view(window: dict[str, Any], now: datetime, position: int) -> dict[str, Any]:
    occurrence = occurrence_at(window, now)
    return {**window, "active_until": occurrence.end.isoformat() if occurrence else None, "position": position}
