"""The audit log: one row per stored event, with who, why, where, a summary, and a hash chain.

It reads raw stored events (no domain classes), so it keeps up with large histories, and it
never drops an event: unknown event types still get a row and a link in the chain.

Late rows. An event gets its time when it is made and its position when it commits, so writers that
commit out of time order leave rows whose time is earlier than an earlier position's. Such a row is
"late": its `at` is below the running maximum of `at` over the rows before it (a tie is not late),
or its `at` is no plain text this module can compare as the database does (not a string, or holding
NUL, which the read store escapes). Each late row is also kept in `sk_audit_late` (its time, its
position, and the running maximum it fell below). Every other row's `at` is at least every earlier
row's, so the rows that are not late have `at` non-decreasing in position: that is what lets
audit_queries.py find a time window's rows as one range of positions plus the few late rows
(its module doc has the argument). The marks depend only on the rows in position order, so a
rebuild from zero and an incremental application make the same ones: both go through `apply_batch`,
which carries the running maximum from batch to batch as it carries the chain's head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.service import with_stage_id
from domain.values import normalise_key
from projections.base import Projection
from projections.chain import GENESIS, link
from projections.raw import RawEvent
from projections.schema import BYTEWISE
from projections.store import Cursor

COLUMNS = (
    "position",
    "at",
    "actor",
    "reason",
    "service_id",
    "stage",
    "from_stage",
    "stage_id",
    "from_stage_id",
    "configuration_id",
    "deployment_id",
    "aggregate_id",
    "aggregate_version",
    "event_type",
    "summary",
    "hash",
)


# What a committed batch leaves for the next: its last position, the chain's head, the running maximum
# of `at` (the last row's that is not late), the stage ids known.
_Kept = tuple[int, str, str, tuple[dict[tuple[str, str], str | None], set[str]]]

# The running maximum of `at` before any row: below every text, so the first comparable row is not late.
NO_TIME = ""

# The last row's hash and the running maximum of `at` after it: the row's own `at` unless the row is late
# (then the maximum it fell below, kept with it). Two primary-key lookups: no index a bulk build drops.
HEAD_QUERY = (
    "SELECT hash, COALESCE((SELECT l.top FROM sk_audit_late l WHERE l.at = sk_audit.at "
    "AND l.position = sk_audit.position), at) AS top FROM sk_audit ORDER BY position DESC LIMIT 1"
)


class AuditProjection(Projection):
    name = "audit"
    raw = True
    # 2: stage ids; 3: partial indexes on the columns most rows leave empty; 4: BYTEWISE text columns,
    # no (service_id, at) index; 5: the late rows (sk_audit_late)
    schema_version = 5
    tables = ("sk_audit", "sk_audit_subjects", "sk_audit_stages", "sk_audit_late")
    reads = frozenset(
        (
            "timestamp", "actor", "reason", "service_id", "configuration_id", "deployment_id",
            "stage", "stages", "new_name", "from_stage", "to_stage", "new",
        )
    )  # fmt: skip
    # Every column compared or sorted is BYTEWISE (projections/schema.py): ids, ISO times, names, types.
    ddl = (
        f"""CREATE TABLE IF NOT EXISTS sk_audit (
            position BIGINT PRIMARY KEY,
            at TEXT {BYTEWISE} NOT NULL,
            actor TEXT {BYTEWISE},
            reason TEXT,
            service_id TEXT {BYTEWISE},
            stage TEXT {BYTEWISE},
            from_stage TEXT {BYTEWISE},
            stage_id TEXT {BYTEWISE},
            from_stage_id TEXT {BYTEWISE},
            configuration_id TEXT {BYTEWISE},
            deployment_id TEXT {BYTEWISE},
            aggregate_id TEXT {BYTEWISE} NOT NULL,
            aggregate_version INTEGER NOT NULL,
            event_type TEXT {BYTEWISE} NOT NULL,
            summary TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        # A service's rows in a time window: this index's newest first, or with sk_audit_at's (BitmapAnd).
        # A (service_id, at) index served it in 0.3 ms at 1,000,000 events; without it, 1-3 ms (p99 9.8 ms
        # over 600 random months and services): not worth its build, the costliest of a rebuild's (v4).
        "CREATE INDEX IF NOT EXISTS sk_audit_service ON sk_audit (service_id, position)",
        "CREATE INDEX IF NOT EXISTS sk_audit_actor ON sk_audit (actor, position)",
        # Most rows have no deployment or stage (configuration and bookkeeping events): those rows
        # stay out of these indexes; a filter on the column (`=` or `IN`) still uses them.
        "CREATE INDEX IF NOT EXISTS sk_audit_configuration ON sk_audit (configuration_id, position) "
        "WHERE configuration_id IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS sk_audit_deployment ON sk_audit (deployment_id, position) "
        "WHERE deployment_id IS NOT NULL",
        # Also the type prefixes (`LIKE 'Deployment.%'`: a range of a BYTEWISE column).
        "CREATE INDEX IF NOT EXISTS sk_audit_type ON sk_audit (event_type, position)",
        "CREATE INDEX IF NOT EXISTS sk_audit_stage ON sk_audit (stage_id, position) WHERE stage_id IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS sk_audit_from_stage ON sk_audit (from_stage_id, position) "
        "WHERE from_stage_id IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS sk_audit_at ON sk_audit (at)",
        "CREATE INDEX IF NOT EXISTS sk_audit_aggregate ON sk_audit (aggregate_id, aggregate_version)",
        # Which service / configuration / stage each aggregate belongs to, for filtering (its aggregate_id
        # is compared with sk_audit's: the same collation).
        f"""CREATE TABLE IF NOT EXISTS sk_audit_subjects (
            aggregate_id TEXT {BYTEWISE} PRIMARY KEY,
            kind TEXT NOT NULL,
            service_id TEXT,
            configuration_id TEXT,
            stage TEXT
        )""",
        # The late rows (the module doc): few, written with their batch, so a rebuild's only extra work is
        # theirs (no index over every row to build). Its key serves both of its reads: a time window's late
        # rows (a range of `at`) and whether a given row of sk_audit is late (its `at` and position).
        f"""CREATE TABLE IF NOT EXISTS sk_audit_late (
            at TEXT {BYTEWISE} NOT NULL,
            position BIGINT NOT NULL,
            top TEXT {BYTEWISE} NOT NULL,
            PRIMARY KEY (at, position)
        )""",
        # The id of each service's stage names as of the last event applied (names change, ids do not).
        """CREATE TABLE IF NOT EXISTS sk_audit_stages (
            service_id TEXT NOT NULL,
            name_key TEXT NOT NULL,
            stage_id TEXT NOT NULL,
            PRIMARY KEY (service_id, name_key)
        )""",
    )

    # The summary, hash and reason are shown, never searched: their statistics (long text, the costliest
    # to sample) are left out (audit_queries.py filters and sorts on the others).
    statistics = {"sk_audit": tuple(c for c in COLUMNS if c not in ("summary", "hash", "reason"))}

    def __init__(self) -> None:
        super().__init__()
        # Subjects of services, configurations and subject-less aggregates never change, so they
        # are remembered across batches; a deployment's stage changes and is re-read per batch.
        self._stable: dict[str, dict[str, Any] | None] = {}
        self._kinds: dict[str, _Kind] = {}
        # The chain's head, the running maximum of `at` (late rows) and the stage ids the last committed
        # batch left, with that batch's last position (`_kept`; None: unknown). They hold for a batch
        # whose first event directly follows that position: its tracking position is then that one (a raw
        # projection sees every event), and this process committed the rows it stands on. (Another
        # process's batches move it further; a reset by a rebuild, back.) A batch's own are `_pending`
        # until the follower says it committed.
        self._kept: _Kept | None = None
        self._pending: _Kept | None = None

    def chain_head(self, cursor: Cursor) -> str:
        return self._head(cursor)[0]

    def _head(self, cursor: Cursor) -> tuple[str, str]:
        """The chain's head and the running maximum of `at`, as the rows committed leave them (one query)."""
        cursor.execute(HEAD_QUERY)
        row = cursor.fetchone()
        return (str(row["hash"]), str(row["top"])) if row else (GENESIS, NO_TIME)

    def apply_batch(self, events: Sequence[RawEvent], cursor: Cursor) -> None:
        if not events:
            return
        kept = self._kept if self._kept is not None and events[0].position == self._kept[0] + 1 else None
        self._kept = self._pending = None  # (this batch changes them in place)
        previous, top = (kept[1], kept[2]) if kept is not None else self._head(cursor)
        subjects = Subjects(cursor, self._stable, events)
        rows: list[tuple[Any, ...]] = []
        late: list[tuple[Any, int, str]] = []
        ids = StageIds(cursor, *kept[3]) if kept is not None else StageIds(cursor)
        ids.prefetch(self._services(events, subjects))
        stable, subject_of, kinds = self._stable, self._subject, self._kinds
        for raw in events:
            kind, data, aggregate_id = raw.type, raw.data, raw.aggregate_id
            flags = kinds.get(kind)
            if flags is None:
                flags = kinds[kind] = _Kind.of(kind)
            # Most events: one whose aggregate's subject never changes, remembered (`_subject`'s first test).
            if kind not in _SUBJECT_EVENTS and aggregate_id in stable:
                subject = stable[aggregate_id]
            else:
                subject = subject_of(subjects, kind, aggregate_id, data)
            # A link a reader process computed holds where it was computed from this very hash.
            previous = raw.hash if raw.after == previous and raw.hash is not None else link(previous, raw.notification)
            service_id = subject.get("service_id") if subject else None
            if flags.service:
                stage = data.get("stage")
                if isinstance(stage, dict):
                    stage = stage.get("name")
            elif flags.to_stage:
                stage = str(data["to_stage"])
            else:
                stage = subject.get("stage") if subject else None
            from_stage = data.get("from_stage") if flags.move else None
            # Names resolve as they were before the event (a rename's old name), or, for a stage
            # the event creates, after it. (`of` is None without a service and a name.)
            stage_id = ids.of(service_id, stage) if stage is not None and service_id is not None else None
            if flags.service:
                ids.follow(kind, aggregate_id, data)
                stage_id = stage_id or ids.of(service_id, stage)
            at = data.get("timestamp")
            if type(at) is str and at >= top and "\x00" not in at:
                top = at
            else:
                late.append((at, raw.position, top))
            rows.append(
                (
                    raw.position,
                    at,
                    data.get("actor"),
                    data.get("reason"),
                    service_id,
                    stage,
                    from_stage,
                    stage_id,
                    None if from_stage is None else ids.of(service_id, from_stage),
                    subject.get("configuration_id") if subject else None,
                    aggregate_id if flags.deployment else data.get("deployment_id"),
                    aggregate_id,
                    raw.version,
                    kind,
                    raw.summary,
                    previous,
                )
            )
        subjects.flush()
        ids.flush()
        cursor.copy_rows("sk_audit", COLUMNS, rows)
        if late:
            cursor.copy_rows("sk_audit_late", ("at", "position", "top"), late)
        self._pending = (events[-1].position, previous, top, ids.kept())

    def start_batch(self) -> None:
        self._pending = None

    def committed(self) -> None:
        self._kept, self._pending = self._pending, None

    def _services(self, events: Sequence[RawEvent], subjects: Subjects) -> set[str]:
        """The services whose stage names this batch may look up (a superset): their stage ids are read
        in one query, not one per service."""
        found: set[Any] = set()
        stable = self._stable
        for aggregate_id in {raw.aggregate_id for raw in events}:
            subject = stable.get(aggregate_id) if aggregate_id in stable else subjects.known(aggregate_id)
            if subject is not None:
                found.add(subject["service_id"])
        found.update([raw.data.get("service_id") for raw in events])  # creating events name theirs
        found.update([raw.aggregate_id for raw in events if raw.type.startswith("Service.")])
        return {service_id for service_id in found if isinstance(service_id, str)}

    def _subject(self, subjects: Subjects, kind: str, aggregate_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        if kind not in _SUBJECT_EVENTS and aggregate_id in self._stable:
            return self._stable[aggregate_id]  # most events: one whose aggregate's subject never changes
        new: dict[str, Any] | None = None
        if kind == "Service.Registered":
            new = {"kind": "service", "service_id": aggregate_id, "configuration_id": None, "stage": None}
        elif kind == "Configuration.Defined":
            new = {
                "kind": "configuration",
                "service_id": data["service_id"],
                "configuration_id": aggregate_id,
                "stage": None,
            }
        elif kind == "Deployment.Requested":
            new = {
                "kind": "deployment",
                "service_id": data["service_id"],
                "configuration_id": data["configuration_id"],
                "stage": data["stage"],
            }
        elif kind == "Approval.Requested":
            service_id = data["service_id"]
            new = {"kind": "approval", "service_id": service_id, "configuration_id": None, "stage": data["stage"]}
        elif kind == "Archive.Requested":
            new = {
                "kind": "archive",
                "service_id": data["service_id"],
                "configuration_id": data["configuration_id"],
                "stage": data["stage"],
            }
        elif kind == "Refusal.Recorded":
            return {"service_id": data.get("service_id"), "configuration_id": None, "stage": None}
        if new is not None:
            if new["kind"] != "deployment":
                self._remember(aggregate_id, new)
            subjects.add(aggregate_id, new)
            return new
        if aggregate_id in self._stable:
            return self._stable[aggregate_id]
        subject = subjects.get(aggregate_id)
        if subject is None or subject["kind"] != "deployment":
            self._remember(aggregate_id, subject)
        if subject is not None and kind in ("Deployment.Moved", "Deployment.StageRenamed"):
            subject = subjects.move(aggregate_id, data["to_stage"] if kind == "Deployment.Moved" else data["new"])
        return subject

    def _remember(self, aggregate_id: str, subject: dict[str, Any] | None) -> None:
        if len(self._stable) > 200_000:
            self._stable.clear()
        self._stable[aggregate_id] = subject


@dataclass(frozen=True, slots=True)
class _Kind:
    """What an audit row reads of its event's type (found once per type)."""

    service: bool  # a service's event: its stage is the event's, and it may change the stage ids
    to_stage: bool  # a move: its stage is the one moved to
    move: bool  # any move event: it names the stage moved from
    deployment: bool  # a deployment's event: the aggregate is the deployment

    @classmethod
    def of(cls, kind: str) -> _Kind:
        return cls(
            kind.startswith("Service."),
            kind in ("Deployment.MoveRequested", "Deployment.Moved"),
            kind.startswith("Deployment.Move"),
            kind.startswith("Deployment."),
        )


# The events that create an aggregate's subject (see AuditProjection._subject).
CREATING = frozenset(
    ("Service.Registered", "Configuration.Defined", "Deployment.Requested", "Approval.Requested", "Archive.Requested")
)
# The events whose subject `_subject` makes from the event itself.
_SUBJECT_EVENTS = CREATING | {"Refusal.Recorded"}


class Subjects:
    """The subjects a batch reads and writes: those it needs are read in one query before the batch,
    and what it adds or moves is written in one statement each after it."""

    def __init__(self, cursor: Cursor, stable: dict[str, dict[str, Any] | None], events: Sequence[RawEvent]) -> None:
        self._cursor = cursor
        self._known: dict[str, dict[str, Any] | None] = {}
        self._added: dict[str, dict[str, Any]] = {}
        self._moved: dict[str, str] = {}
        self._read: set[str] = set()
        wanted = sorted(
            {
                aggregate_id
                for raw in events
                if raw.type not in CREATING and (aggregate_id := raw.aggregate_id) not in stable
            }
        )
        for start in range(0, len(wanted), 1000):
            self._read_rows(wanted[start : start + 1000])

    def _read_rows(self, aggregate_ids: list[str]) -> None:
        marks = ", ".join(["%s"] * len(aggregate_ids))
        self._cursor.execute(f"SELECT * FROM sk_audit_subjects WHERE aggregate_id IN ({marks})", aggregate_ids)  # noqa: S608
        for found in self._cursor.fetchall():
            self._known[found["aggregate_id"]] = found
        self._read.update(aggregate_ids)

    def known(self, aggregate_id: str) -> dict[str, Any] | None:
        """The subject read ahead for the aggregate, if any (no query)."""
        return self._known.get(aggregate_id)

    def get(self, aggregate_id: str) -> dict[str, Any] | None:
        """The subject as of this point of the batch (None: the aggregate has none)."""
        if aggregate_id not in self._known and aggregate_id not in self._read:
            # Not read ahead: it was among the remembered subjects, forgotten since.
            self._read_rows([aggregate_id])
        return self._known.get(aggregate_id)

    def add(self, aggregate_id: str, subject: dict[str, Any]) -> None:
        # The first subject of an aggregate stays (as with ON CONFLICT DO NOTHING, row by row).
        if aggregate_id not in self._added:
            self._added[aggregate_id] = subject
        self._known[aggregate_id] = subject

    def move(self, aggregate_id: str, stage: str) -> dict[str, Any]:
        subject = self._known[aggregate_id] = {**(self._known[aggregate_id] or {}), "stage": stage}
        self._moved[aggregate_id] = stage
        return subject

    def flush(self) -> None:
        if self._added:
            self._cursor.executemany(
                "INSERT INTO sk_audit_subjects (aggregate_id, kind, service_id, configuration_id, stage) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (aggregate_id) DO NOTHING",
                [
                    (aggregate_id, s["kind"], s["service_id"], s["configuration_id"], s["stage"])
                    for aggregate_id, s in self._added.items()
                ],
            )
        if self._moved:
            self._cursor.executemany(
                "UPDATE sk_audit_subjects SET stage = %s WHERE aggregate_id = %s",
                [(stage, aggregate_id) for aggregate_id, stage in self._moved.items()],
            )


class StageIds:
    """Which stage each name meant when an event was recorded: rows keep the stage's id, so a
    renamed stage's history stays one history."""

    # Past this many names known, a batch's ids are not kept for the next one (read again as needed).
    KEPT = 100_000

    def __init__(
        self,
        cursor: Cursor,
        known: dict[tuple[str, str], str | None] | None = None,
        services: set[str] | None = None,
    ) -> None:
        """`known` and `services`: what an earlier batch's `kept` returned, when they still hold."""
        self._cursor = cursor
        self._known: dict[tuple[str, str], str | None] = {} if known is None else known
        self._services: set[str] = set() if services is None else services
        # (service, name key) -> its stage id after this batch (None: no such stage any more).
        self._changed: dict[tuple[str, str], str | None] = {}

    def kept(self) -> tuple[dict[tuple[str, str], str | None], set[str]]:
        """What this batch knows for the next (after `flush`: it is what the table holds, for the
        services read; for others, names this batch set, which `of` prefers to the table's anyway)."""
        if len(self._known) > self.KEPT:
            return {}, set()
        return self._known, self._services

    def prefetch(self, service_ids: set[str]) -> None:
        """The stage ids of these services read in one query (a thousand services a query)."""
        wanted = sorted(service_ids - self._services)
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            marks = ", ".join(["%s"] * len(chunk))
            self._cursor.execute(
                f"SELECT service_id, name_key, stage_id FROM sk_audit_stages WHERE service_id IN ({marks})",  # noqa: S608
                chunk,
            )
            for row in self._cursor.fetchall():
                self._known.setdefault((row["service_id"], row["name_key"]), row["stage_id"])
            self._services.update(chunk)

    def of(self, service_id: str | None, name: str | None) -> str | None:
        if service_id is None or name is None:
            return None
        if service_id not in self._services:
            # All of a service's stages in one query, the first time the batch needs one of them.
            self._services.add(service_id)
            self._cursor.execute("SELECT name_key, stage_id FROM sk_audit_stages WHERE service_id = %s", (service_id,))
            for row in self._cursor.fetchall():
                self._known.setdefault((service_id, row["name_key"]), row["stage_id"])
        return self._known.get((service_id, normalise_key(name)))

    def follow(self, kind: str, service_id: str, data: dict[str, Any]) -> None:
        """Apply a service event's stage change, after its own row resolved the names it holds."""
        if kind == "Service.Registered":
            for stage in data.get("stages", []):
                self._set(service_id, stage["name"], with_stage_id(service_id, stage)["id"])
        elif kind == "Service.StageAdded":
            self._set(service_id, data["stage"]["name"], with_stage_id(service_id, data["stage"])["id"])
        elif kind == "Service.StageRenamed":
            stage_id = self.of(service_id, data["stage"])
            self._drop(service_id, data["stage"])
            if stage_id is not None:
                self._set(service_id, data["new_name"], stage_id)
        elif kind == "Service.StageRemoved":
            self._drop(service_id, data["stage"])

    def _set(self, service_id: str, name: str, stage_id: str) -> None:
        key = (service_id, normalise_key(name))
        self._known[key] = self._changed[key] = stage_id

    def _drop(self, service_id: str, name: str) -> None:
        key = (service_id, normalise_key(name))
        self._known[key] = self._changed[key] = None

    def flush(self) -> None:
        """Write each name's last change of the batch (read back first: `of` prefers what it knows)."""
        kept = [(*key, stage_id) for key, stage_id in self._changed.items() if stage_id is not None]
        dropped = [key for key, stage_id in self._changed.items() if stage_id is None]
        if kept:
            self._cursor.executemany(
                "INSERT INTO sk_audit_stages (service_id, name_key, stage_id) VALUES (%s, %s, %s) "
                "ON CONFLICT (service_id, name_key) DO UPDATE SET stage_id = excluded.stage_id",
                kept,
            )
        if dropped:
            self._cursor.executemany("DELETE FROM sk_audit_stages WHERE service_id = %s AND name_key = %s", dropped)
