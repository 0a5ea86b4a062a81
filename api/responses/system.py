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


class Health(Out):
    status: Literal["ok", "degraded"]
    head: int
    read_models: dict[str, int]
    process_manager: ProcessManager
    vcenter_driver: str
    directory: Literal["not configured", "ok", "unreachable"]
    errors: dict[str, str]
