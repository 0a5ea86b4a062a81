"""Local users and groups (administrators), and a local user's own password.

Local users sign in like directory users (HTTP Basic, the web console, API tokens); their groups
are written in grants as `cn=<group>,ou=local-groups,o=stagekeeper` (domain/local_users.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, status
from pydantic import Field

from adapters.runtime import Runtime
from api.access import require_admin
from api.deps import MinPosition, PrincipalDep, RuntimeDep
from api.responses import Out, Position, errors
from api.routing import OneHopRoute
from api.schemas import Body, Reason
from domain.accounts import LocalAccount
from domain.errors import ConflictError, PermissionDeniedError, UnavailableError
from domain.local_users import GROUP_SUFFIX, check_username, group_dn
from projections.users import list_users

router = APIRouter(route_class=OneHopRoute, tags=["users"], responses=errors(401, 403, 422, 503))


class UserCreate(Reason):
    username: str = Field(description="Lower-case letters, digits, '.', '_', '-'; starts with a letter")
    password: str = Field(description="At least 12 characters, not built on the user name")
    groups: list[str] = Field(default_factory=list, description="Local group names (`administrators`: admins)")
    display_name: str | None = None


class UserChange(Reason):
    password: str | None = None
    groups: list[str] | None = None
    display_name: str | None = None
    disabled: bool | None = None


class PasswordChange(Body):
    current_password: str
    new_password: str


class User(Out):
    username: str
    display_name: str
    groups: list[str]
    group_dns: list[str] = Field(description="The groups as grants name them")
    administrator: bool
    disabled: bool
    locked_until: str | None = Field(description="Set while locked out after repeated wrong passwords")
    position: int


class UserList(Out):
    items: list[User]
    position: Position


class Group(Out):
    name: str
    dn: str
    members: list[str]


class GroupList(Out):
    items: list[Group]
    position: Position


def _view(runtime: Runtime, account: LocalAccount, position: int) -> User:
    locked = account.locked_until if account.locked_at(runtime.app.clock.now()) else None
    return User(
        username=account.username, display_name=account.display_name, groups=list(account.groups),
        group_dns=[group_dn(g) for g in account.groups], administrator=account.username == "admin"
        or "administrators" in account.groups, disabled=account.disabled,
        locked_until=locked.isoformat() if locked else None, position=position,
    )  # fmt: skip


def _row_view(row: dict[str, Any], now: str) -> User:
    locked = row["locked_until"] if row["locked_until"] and row["locked_until"] > now else None
    return User(
        username=row["username"], display_name=row["display_name"], groups=row["groups"],
        group_dns=[group_dn(g) for g in row["groups"]], administrator=row["username"] == "admin"
        or "administrators" in row["groups"], disabled=row["disabled"], locked_until=locked, position=0,
    )  # fmt: skip


def _not_in_directory(request: Request, username: str) -> None:
    directory = request.app.state.authenticator.directory
    if directory is None:
        return
    try:
        known = directory.groups(username)
    except UnavailableError:
        raise UnavailableError("the directory cannot be reached to check the name is not a directory user's") from None
    if known is not None:
        raise ConflictError(f"{username!r} is a directory user; a local user may not take the name", field="username")


@router.post("/api/v1/users", status_code=status.HTTP_201_CREATED, response_model=User, responses=errors(409))
def create_user(body: UserCreate, runtime: RuntimeDep, who: PrincipalDep, request: Request) -> User:
    """Create a local user (administrators)."""
    require_admin(who, "create local users")
    _not_in_directory(request, check_username(body.username))
    outcome = runtime.app.create_user(
        body.username, body.password, body.groups, body.display_name, actor=who.user, reason=body.reason
    )
    return _view(runtime, outcome.value, outcome.position)


@router.get("/api/v1/users", response_model=UserList)
def users(
    runtime: RuntimeDep,
    who: PrincipalDep,
    min_position: MinPosition = None,
    group: str | None = Query(None, max_length=64, description="Only members of this local group"),
) -> UserList:
    """Local users (administrators)."""
    require_admin(who, "list local users")
    position = runtime.read_models.wait("users", min_position, runtime.settings.read_wait_seconds)
    now = runtime.app.clock.now().isoformat()
    items = [_row_view(row, now) for row in list_users(runtime.store, group)]
    return UserList(items=items, position=position)


@router.get("/api/v1/users/{username}", response_model=User, responses=errors(404))
def user(username: str, runtime: RuntimeDep, who: PrincipalDep) -> User:
    """One local user (administrators, or the user)."""
    if username != who.user:
        require_admin(who, "read other local users")
    account = runtime.app.local_user(username)
    return _view(runtime, account, runtime.app.head())


@router.patch("/api/v1/users/{username}", response_model=User, responses=errors(404, 409))
def change_user(username: str, body: UserChange, runtime: RuntimeDep, who: PrincipalDep, request: Request) -> User:
    """Change a local user's password, groups, display name or disable it (administrators)."""
    require_admin(who, "change local users")
    if body.disabled and username == who.user:
        raise PermissionDeniedError("you may not disable your own account")
    outcome = runtime.app.change_user(
        username, who.user, password=body.password, groups=body.groups, display_name=body.display_name,
        disabled=body.disabled, reason=body.reason,
    )  # fmt: skip
    request.app.state.authenticator.forget_all()
    return _view(runtime, outcome.value, outcome.position)


@router.post("/api/v1/users/{username}/unlock", response_model=User, responses=errors(404, 409))
def unlock_user(username: str, runtime: RuntimeDep, who: PrincipalDep, body: Reason | None = None) -> User:
    """End a lockout before its time (administrators)."""
    require_admin(who, "unlock local users")
    outcome = runtime.app.unlock_user(username, who.user, reason=body.reason if body else None)
    return _view(runtime, outcome.value, outcome.position)


@router.put("/api/v1/me/password", response_model=User, responses=errors(404, 409))
def change_own_password(body: PasswordChange, runtime: RuntimeDep, who: PrincipalDep, request: Request) -> User:
    """A local user changes their own password (the current one is asked again)."""
    outcome = runtime.app.change_own_password(who.user, body.current_password, body.new_password)
    request.app.state.authenticator.forget_all()
    return _view(runtime, outcome.value, outcome.position)


@router.get("/api/v1/groups", response_model=GroupList)
def groups(runtime: RuntimeDep, who: PrincipalDep, min_position: MinPosition = None) -> GroupList:
    """Local groups and their members (administrators); grants name them by `dn`."""
    require_admin(who, "list local groups")
    position = runtime.read_models.wait("users", min_position, runtime.settings.read_wait_seconds)
    members: dict[str, list[str]] = {}
    for row in list_users(runtime.store):
        for name in row["groups"]:
            members.setdefault(name, []).append(row["username"])
    items = [Group(name=n, dn=f"cn={n}{GROUP_SUFFIX}", members=m) for n, m in sorted(members.items())]
    return GroupList(items=items, position=position)
