"""LdapDirectory: the Directory port over LDAP (ldap3), tested against OpenLDAP slapd.

User input never reaches a filter unescaped (RFC 4515 escaping), and a user's DN comes from
the directory, never from input. Group lookups are cached briefly.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from ldap3 import BASE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPBindError, LDAPException, LDAPInvalidCredentialsResult, LDAPSocketOpenError
from ldap3.utils.conv import escape_filter_chars

from domain.errors import UnavailableError
from domain.ports import DirectoryUser

MAX_USERNAME = 256
# The attribute a login name is matched against in the user filter, e.g. "uid" in "(uid={username})".
_LOGIN_ATTRIBUTE = re.compile(r"\(\s*([A-Za-z][\w-]*)\s*=\s*\{username\}\s*\)")


def login_attribute(user_filter: str) -> str:
    """The attribute whose value is a user's canonical name (uid unless the filter says otherwise)."""
    match = _LOGIN_ATTRIBUTE.search(user_filter)
    return match.group(1) if match else "uid"


@dataclass(frozen=True)
class LdapSettings:
    url: str  # ldap://host:389 or ldaps://host:636
    bind_dn: str
    bind_password: str
    user_base: str
    group_base: str
    user_filter: str = "(uid={username})"
    start_tls: bool = False
    ca_file: str | None = None
    timeout: float = 5.0
    group_cache_seconds: float = 60.0


class LdapDirectory:
    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        self._tls = None
        if settings.url.startswith("ldaps://") or settings.start_tls:
            self._tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file)
        self._cache: dict[str, tuple[float, frozenset[str] | None]] = {}
        self._lock = threading.Lock()

    def _connect(self, dn: str, password: str) -> Connection:
        # A new Server each time: ldap3 remembers failed addresses on a Server object, which would
        # keep a directory that came back unreachable.
        server = Server(self.settings.url, connect_timeout=self.settings.timeout, tls=self._tls, get_info=None)
        connection = Connection(
            server,
            user=dn,
            password=password,
            receive_timeout=max(1, int(self.settings.timeout)),  # ldap3 packs it as an integer
            raise_exceptions=True,
        )
        try:
            if self.settings.start_tls:
                connection.open()
                connection.start_tls()
            connection.bind()
        except LDAPSocketOpenError as error:
            raise UnavailableError(f"the directory at {self.settings.url} is unreachable: {error}") from error
        return connection

    def _service(self) -> Connection:
        try:
            return self._connect(self.settings.bind_dn, self.settings.bind_password)
        except (LDAPBindError, LDAPInvalidCredentialsResult) as error:
            raise UnavailableError(f"the directory refused Stagekeeper's service account: {error}") from error

    @staticmethod
    def _usable(username: str) -> bool:
        return 0 < len(username) <= MAX_USERNAME and "\x00" not in username

    def _find_user(self, connection: Connection, username: str) -> tuple[str, str, dict[str, Any]] | None:
        """(DN, canonical name, attributes) of the one entry matching `username`, or None.

        The directory matches names loosely (uid compares case-insensitively and ignores extra
        spaces), so "ALICE " finds alice: the canonical name is the entry's own value, never the
        spelling typed, so one person is one actor in the audit log and in grants.
        """
        attribute = login_attribute(self.settings.user_filter)
        search = self.settings.user_filter.replace("{username}", escape_filter_chars(username))
        connection.search(self.settings.user_base, search, SUBTREE, attributes=[attribute, "cn"], size_limit=2)
        entries = [e for e in connection.response or [] if e.get("type") == "searchResEntry"]
        if len(entries) != 1:
            return None  # unknown, or ambiguous: never guess which account was meant
        attributes = dict(entries[0]["attributes"])
        values = attributes.get(attribute)
        canonical = values[0] if isinstance(values, list) and values else values
        if not isinstance(canonical, str) or not canonical:
            return None  # an entry without a name cannot be an actor
        return str(entries[0]["dn"]), canonical, attributes

    def _groups(self, connection: Connection, username: str, dn: str) -> frozenset[str]:
        search = (
            f"(|(&(objectClass=groupOfNames)(member={escape_filter_chars(dn)}))"
            f"(&(objectClass=posixGroup)(memberUid={escape_filter_chars(username)})))"
        )
        connection.search(self.settings.group_base, search, SUBTREE, attributes=["cn"])
        return frozenset(str(e["dn"]) for e in connection.response or [] if e.get("type") == "searchResEntry")

    def authenticate(self, username: str, password: str) -> DirectoryUser | None:
        if not self._usable(username) or not password:
            return None  # an empty password would be an anonymous bind, which proves nothing
        try:
            service = self._service()
            try:
                found = self._find_user(service, username)
                if found is None:
                    return None
                dn, canonical, attributes = found
                try:
                    self._connect(dn, password).unbind()
                except (LDAPBindError, LDAPInvalidCredentialsResult):
                    return None
                groups = self._groups(service, canonical, dn)
            finally:
                service.unbind()
        except LDAPException as error:
            raise UnavailableError(f"the directory failed: {error}") from error
        self._remember(canonical, groups)
        name = attributes.get("cn")
        display = str(name[0] if isinstance(name, list) and name else name or canonical)
        return DirectoryUser(username=canonical, dn=dn, display_name=display, groups=groups)

    def groups(self, username: str) -> frozenset[str] | None:
        with self._lock:
            entry = self._cache.get(username)
        if entry and entry[0] > time.monotonic():
            return entry[1]
        if not self._usable(username):
            return None
        try:
            service = self._service()
            try:
                found = self._find_user(service, username)
                groups = self._groups(service, found[1], found[0]) if found else None
            finally:
                service.unbind()
        except LDAPException as error:
            raise UnavailableError(f"the directory failed: {error}") from error
        self._remember(username, groups)
        return groups

    def _remember(self, username: str, groups: frozenset[str] | None) -> None:
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[username] = (time.monotonic() + self.settings.group_cache_seconds, groups)

    def check(self) -> None:
        """Bind as the service account and read the user base (start-up and health)."""
        service = self._service()
        try:
            service.search(self.settings.user_base, "(objectClass=*)", BASE, attributes=[])
        finally:
            service.unbind()
