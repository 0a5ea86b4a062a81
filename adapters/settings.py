"""Settings, read from STAGEKEEPER_* environment variables in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_DATABASE_URL = "sqlite:///./stagekeeper.db"


class SettingsError(ValueError):
    """A setting has a value Stagekeeper cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    admin_password: str | None = None
    vcenter_driver: str = "simulated"
    vcenter_url: str | None = None
    vcenter_user: str | None = None
    vcenter_password: str | None = None
    vcenter_ca_bundle: str | None = None
    vcenter_verify_tls: bool = True
    vcenter_parallel_tasks: int = 8
    vcenter_task_timeout: float = 600.0
    vcenter_default_network: str = "VM Network"
    simulator_state: str | None = None
    simulator_task_seconds: float = 0.0
    read_wait_seconds: float = 5.0
    unavailable_seconds: float = 5.0
    max_streams_per_caller: int = 20
    poll_seconds: float = 0.2
    credential_cache_seconds: float = 60.0
    run_workers: bool = True
    ldap_url: str | None = None
    ldap_bind_dn: str | None = None
    ldap_bind_password: str | None = None
    ldap_user_base: str | None = None
    ldap_user_filter: str = "(uid={username})"
    ldap_group_base: str | None = None
    ldap_admin_group: str | None = None
    ldap_start_tls: bool = False
    ldap_ca_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str) -> str | None:
            value = env.get(f"STAGEKEEPER_{name}")
            return value if value not in (None, "") else None

        def number(name: str, default: float, low: float, high: float) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(f"STAGEKEEPER_{name} must be a number, not {raw!r}") from None
            if not low <= value <= high:
                raise SettingsError(f"STAGEKEEPER_{name} must be from {low} to {high}")
            return value

        driver = get("VCENTER_DRIVER") or "simulated"
        if driver not in ("simulated", "pyvmomi"):
            raise SettingsError("STAGEKEEPER_VCENTER_DRIVER must be 'simulated' or 'pyvmomi'")
        settings = cls(
            database_url=get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            admin_password=get("ADMIN_PASSWORD"),
            vcenter_driver=driver,
            vcenter_url=get("VCENTER_URL"),
            vcenter_user=get("VCENTER_USER"),
            vcenter_password=get("VCENTER_PASSWORD"),
            vcenter_ca_bundle=get("VCENTER_CA_BUNDLE"),
            vcenter_verify_tls=(get("VCENTER_VERIFY_TLS") or "true").lower() not in ("0", "false", "no"),
            vcenter_parallel_tasks=int(number("VCENTER_PARALLEL_TASKS", 8, 1, 64)),
            vcenter_task_timeout=number("VCENTER_TASK_TIMEOUT", 600.0, 1.0, 86400.0),
            vcenter_default_network=get("VCENTER_DEFAULT_NETWORK") or "VM Network",
            simulator_state=get("SIMULATOR_STATE"),
            simulator_task_seconds=number("SIMULATOR_TASK_SECONDS", 0.0, 0.0, 60.0),
            read_wait_seconds=number("READ_WAIT_SECONDS", 5.0, 0.0, 300.0),
            unavailable_seconds=number("UNAVAILABLE_SECONDS", 5.0, 1.0, 300.0),
            max_streams_per_caller=int(number("MAX_STREAMS_PER_CALLER", 20, 1, 10000)),
            poll_seconds=number("POLL_SECONDS", 0.2, 0.01, 60.0),
            credential_cache_seconds=number("CREDENTIAL_CACHE_SECONDS", 60.0, 0.0, 3600.0),
            run_workers=(get("SERVE_WORKERS") or "true").lower() not in ("0", "false", "no", "off"),
            ldap_url=get("LDAP_URL"),
            ldap_bind_dn=get("LDAP_BIND_DN"),
            ldap_bind_password=get("LDAP_BIND_PASSWORD"),
            ldap_user_base=get("LDAP_USER_BASE"),
            ldap_user_filter=get("LDAP_USER_FILTER") or "(uid={username})",
            ldap_group_base=get("LDAP_GROUP_BASE"),
            ldap_admin_group=get("LDAP_ADMIN_GROUP"),
            ldap_start_tls=(get("LDAP_START_TLS") or "false").lower() in ("1", "true", "yes"),
            ldap_ca_file=get("LDAP_CA_FILE"),
        )
        database(settings.database_url)  # fail early on a bad URL
        if driver == "pyvmomi":
            missing = [n for n in ("VCENTER_URL", "VCENTER_USER", "VCENTER_PASSWORD") if get(n) is None]
            if missing:
                raise SettingsError(
                    f"STAGEKEEPER_VCENTER_DRIVER=pyvmomi needs {', '.join('STAGEKEEPER_' + m for m in missing)}"
                )
        if settings.ldap_url:
            missing = [
                n for n in ("LDAP_BIND_DN", "LDAP_BIND_PASSWORD", "LDAP_USER_BASE", "LDAP_GROUP_BASE") if get(n) is None
            ]
            if missing:
                raise SettingsError(f"STAGEKEEPER_LDAP_URL needs {', '.join('STAGEKEEPER_' + m for m in missing)}")
            if "{username}" not in settings.ldap_user_filter:
                raise SettingsError("STAGEKEEPER_LDAP_USER_FILTER must contain {username}")
        return settings


@dataclass(frozen=True)
class Database:
    kind: str  # "memory" | "sqlite" | "postgres"
    path: str = ""  # sqlite file (or ":memory:")
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    schema: str = ""

    @property
    def conninfo(self) -> str:
        parts = [f"host={self.host}", f"port={self.port}", f"dbname={self.dbname}"]
        if self.user:
            parts.append(f"user={self.user}")
        if self.password:
            parts.append(f"password={self.password}")
        return " ".join(parts)


def database(url: str) -> Database:
    """Parse STAGEKEEPER_DATABASE_URL: sqlite:///relative/or//absolute.db or postgresql://user@host:port/db."""
    parsed = urlsplit(url)
    if url == "memory://":
        # Events in process memory, read models in an in-memory SQLite: nothing survives a restart.
        return Database(kind="memory", path=":memory:")
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise SettingsError("STAGEKEEPER_DATABASE_URL: sqlite URLs look like sqlite:///./stagekeeper.db")
        if path != ":memory:":
            path = str(Path(path).expanduser())
        return Database(kind="sqlite", path=path)
    if parsed.scheme in ("postgresql", "postgres"):
        dbname = parsed.path.lstrip("/")
        if not parsed.hostname or not dbname:
            raise SettingsError("STAGEKEEPER_DATABASE_URL: postgres URLs look like postgresql://user@host:5432/db")
        query = dict(p.split("=", 1) for p in parsed.query.split("&") if "=" in p)
        return Database(
            kind="postgres",
            host=parsed.hostname,
            port=parsed.port or 5432,
            user=unquote(parsed.username or ""),
            password=unquote(parsed.password or ""),
            dbname=dbname,
            schema=query.get("schema", ""),
        )
    raise SettingsError(
        "STAGEKEEPER_DATABASE_URL must be sqlite:///<file>, postgresql://user@host:port/db or memory://"
    )


# Recently used aggregates stay in memory; "fast-forward" reads only the events stored since,
# so other processes' writes are still seen, and a stale copy still fails at save (versions).
_CACHE = {"AGGREGATE_CACHE_MAXSIZE": "2000", "AGGREGATE_CACHE_FASTFORWARD": "y"}


def event_store_env(db: Database, create_tables: bool = True, timeout: float = 5.0) -> dict[str, str]:
    """The eventsourcing library's environment for this database. During an outage a request
    answers 503 within `timeout`: one call waits at most half of it for a pooled connection
    (POSTGRES_CONNECT_TIMEOUT is the pool's wait) or a lock, in whole seconds as the library
    reads them, which leaves time for a second call (e.g. checking an interrupted commit)."""
    seconds = str(max(1, round(timeout / 2)))
    create = "y" if create_tables else "n"
    if db.kind == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if db.kind == "sqlite":
        return {
            **_CACHE,
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": db.path,
            "SQLITE_LOCK_TIMEOUT": "10",
            "CREATE_TABLE": create,
        }
    env = {
        **_CACHE,
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": db.dbname,
        "POSTGRES_HOST": db.host,
        "POSTGRES_PORT": str(db.port),
        "POSTGRES_USER": db.user or "postgres",
        "POSTGRES_PASSWORD": db.password,
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_CONNECT_TIMEOUT": seconds,
        "POSTGRES_LOCK_TIMEOUT": seconds,
        "POSTGRES_PRE_PING": "y",
        "CREATE_TABLE": create,
    }
    if db.schema:
        env["POSTGRES_SCHEMA"] = db.schema
    return env
