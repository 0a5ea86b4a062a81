"""Templates, tokens, the caller and health."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from api.responses import Out, Position, Timestamp


class Template(Out):
    name: str
    guest_id: str
    os_family: Literal["linux", "windows"]
    cpus: int
    memory_mib: int
    disks_gib: list[int]
    nics: int
    path: str


class TemplateList(Out):
    items: list[Template]


class TemplatesImported(Out):
    imported: list[Template] = Field(description="The templates that were new or changed")
    position: Position


class Token(Out):
    id: UUID
    name: str
    user: str
    hint: str
    expires_at: Timestamp
    revoked: bool
    created_at: Timestamp
    position: Position


class TokenSummary(Out):
    id: UUID
    name: str
    user: str
    hint: str
    issued_by: str
    created_at: Timestamp
    expires_at: Timestamp
    revoked: bool
    revoked_at: Timestamp | None
    revoked_by: str | None
    position: int


class TokenList(Out):
    items: list[TokenSummary] = Field(description="Newest first; never the token itself")
    position: Position


class NewToken(Token):
    token: str = Field(description="The secret: shown in this response only")


class Role(Out):
    service_id: UUID
    role: str
    stage: str | None
    through: str = Field(description='"user", or "group <DN>"')


class Me(Out):
    user: str
    display_name: str
    authenticated_by: Literal["password", "token", "local"]
    groups: list[str]
    admin: bool
    roles: list[Role]


class ProcessManager(Out):
    position: int
    leader: bool
    waiting_for_leadership_seconds: float | None = Field(
        description="How long this process has been waiting to lead the process manager (null: it leads or runs none)"
    )


class Passed(Out):
    projection: str
    position: int
    error: str
    at: Timestamp


class Health(Out):
    status: Literal["ok", "degraded"]
    head: int
    read_models: dict[str, int]
    process_manager: ProcessManager
    vcenter_driver: str
    directory: Literal["not configured", "ok", "unreachable"]
    errors: dict[str, str]
    warnings: dict[str, str] = Field(description="Conditions worth a look that are not failures (a long wait to lead)")
    quarantined: list[Passed] = Field(description="Events a read model passed over (rebuild it once fixed)")
