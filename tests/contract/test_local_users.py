"""Local users on every persistence: creation races, lockout and unlock, disabling, the read model,
and authentication through them (passwords and tokens) with their groups."""

from __future__ import annotations

import base64
import threading
from typing import cast

import pytest

from adapters.runtime import Runtime
from api.auth import Authenticator
from domain.errors import AuthenticationError, ConcurrencyError, ConflictError, ValidationError
from domain.local_users import group_dn
from projections.users import list_users
from tests.support import FixedClock

PASSWORD = "correct horse battery"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def authenticator(runtime: Runtime) -> Authenticator:
    return Authenticator(runtime.app, cache_seconds=0)


def test_a_local_user_signs_in_with_its_groups(runtime: Runtime) -> None:
    runtime.app.create_user("olivia", PASSWORD, ["payroll-team"], "Olivia B.", actor="admin")
    principal = authenticator(runtime).authenticate(basic("olivia", PASSWORD))
    assert principal.user == "olivia"
    assert principal.is_admin is False
    assert principal.groups == frozenset({group_dn("payroll-team")})
    runtime.app.change_user("olivia", "admin", groups=["administrators"], reason="on call")
    assert authenticator(runtime).authenticate(basic("olivia", PASSWORD)).is_admin is True
    with pytest.raises(AuthenticationError, match="wrong username or password"):
        authenticator(runtime).authenticate(basic("olivia", "not her password"))
    with pytest.raises(AuthenticationError, match="wrong username or password"):
        authenticator(runtime).authenticate(basic("nobody", PASSWORD))


def test_two_creations_of_one_name_one_wins(runtime: Runtime) -> None:
    results: list[str] = []
    barrier = threading.Barrier(2)

    def create(display: str) -> None:
        barrier.wait()
        try:
            runtime.app.create_user("olivia", PASSWORD, [], display, actor="admin")
            results.append("created")
        except (ConflictError, ConcurrencyError) as error:
            results.append(type(error).__name__)

    threads = [threading.Thread(target=create, args=(n,)) for n in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ConflictError", "created"]


def test_repeated_wrong_passwords_lock_the_account_once_until_unlocked(runtime: Runtime) -> None:
    clock = cast(FixedClock, runtime.app.clock)
    runtime.app.create_user("olivia", PASSWORD, [], None, actor="admin")
    auth = authenticator(runtime)
    for _ in range(5):
        with pytest.raises(AuthenticationError, match="wrong username or password"):
            auth.authenticate(basic("olivia", "guess"))
    # Locked: even the right password is refused, with the reason.
    with pytest.raises(AuthenticationError, match="locked until"):
        auth.authenticate(basic("olivia", PASSWORD))
    events = [type(e).__qualname__ for e in runtime.app.events.get(runtime.app.local_user("olivia").id)]
    assert events.count("LocalAccount.LockedOut") == 1
    runtime.app.unlock_user("olivia", "admin", reason="she called the help desk")
    assert auth.authenticate(basic("olivia", PASSWORD)).user == "olivia"
    # A lockout also ends by itself.
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            auth.authenticate(basic("olivia", "guess"))
    clock.advance(minutes=16)
    assert auth.authenticate(basic("olivia", PASSWORD)).user == "olivia"


def test_the_break_glass_admin_is_never_locked_out(runtime: Runtime) -> None:
    runtime.app.ensure_local_account("admin", "secret-pw")
    auth = authenticator(runtime)
    for _ in range(8):
        with pytest.raises(AuthenticationError):
            auth.authenticate(basic("admin", "guess"))
    assert auth.authenticate(basic("admin", "secret-pw")).is_admin


def test_a_disabled_user_and_its_tokens_are_refused(runtime: Runtime) -> None:
    runtime.app.create_user("olivia", PASSWORD, ["payroll-team"], None, actor="admin")
    token, _, _ = runtime.app.issue_token("olivia", "ci", 30, actor="olivia")
    auth = authenticator(runtime)
    assert auth.authenticate(f"Bearer {token}").groups == frozenset({group_dn("payroll-team")})
    runtime.app.change_user("olivia", "admin", disabled=True, reason="left the company")
    with pytest.raises(AuthenticationError):
        auth.authenticate(basic("olivia", PASSWORD))
    with pytest.raises(AuthenticationError, match="disabled"):
        auth.authenticate(f"Bearer {token}")
    runtime.app.change_user("olivia", "admin", disabled=False)
    assert auth.authenticate(basic("olivia", PASSWORD)).user == "olivia"


def test_own_password_change_needs_the_current_one(runtime: Runtime) -> None:
    runtime.app.create_user("olivia", PASSWORD, [], None, actor="admin")
    with pytest.raises(ValidationError) as refused:
        runtime.app.change_own_password("olivia", "wrong", "another good passphrase")
    assert refused.value.field == "current_password"
    with pytest.raises(ValidationError) as weak:
        runtime.app.change_own_password("olivia", PASSWORD, "short")
    assert weak.value.field == "new_password"
    runtime.app.change_own_password("olivia", PASSWORD, "another good passphrase")
    assert authenticator(runtime).authenticate(basic("olivia", "another good passphrase")).user == "olivia"


def test_the_read_model_lists_users_and_their_state(runtime: Runtime) -> None:
    runtime.ensure_admin()
    runtime.app.create_user("olivia", PASSWORD, ["payroll-team", "administrators"], "Olivia", actor="admin")
    runtime.app.create_user("petra", PASSWORD, ["payroll-team"], None, actor="admin")
    runtime.app.change_user("petra", "admin", disabled=True)
    runtime.catch_up()
    users = {u["username"]: u for u in list_users(runtime.store)}
    assert set(users) == {"admin", "olivia", "petra"}
    assert users["olivia"]["groups"] == ["administrators", "payroll-team"]
    assert users["olivia"]["display_name"] == "Olivia"
    assert users["petra"]["disabled"] is True
    assert [u["username"] for u in list_users(runtime.store, "payroll-team")] == ["olivia", "petra"]


def test_the_cache_lookup_finds_only_credentials_verified_and_still_valid(runtime: Runtime) -> None:
    """`cached` is what the event loop calls (api/deps.py): a hit only for the exact credential
    verified, never for a wrong password, a malformed header or after the cache is dropped."""
    runtime.app.create_user("olivia", PASSWORD, ["payroll-team"], "Olivia B.", actor="admin")
    cache = Authenticator(runtime.app, cache_seconds=60)
    assert cache.cached(basic("olivia", PASSWORD)) is None  # not verified yet
    verified = cache.authenticate(basic("olivia", PASSWORD))
    assert cache.cached(basic("olivia", PASSWORD)) == verified
    assert cache.cached(basic("olivia", "not her password")) is None
    for malformed in (None, "", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Digest x"):
        assert cache.cached(malformed) is None
    cache.forget_all()
    assert cache.cached(basic("olivia", PASSWORD)) is None
    assert Authenticator(runtime.app, cache_seconds=0).cached(basic("olivia", PASSWORD)) is None
