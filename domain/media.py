"""The media library: ISO images on a datastore, shared by every service.

A Medium is one uploaded file: its unique name (a NameClaim of kind "medium", scope "all"), where
it lies on the datastore, its size and SHA-256 as computed while it streamed through. Deleting it
releases the name; a deleted medium stays in the history (and in the audit log) for good.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTransitionError, ValidationError
from domain.text import check_text

MEDIUM_KIND = "medium"
MEDIUM_SCOPE = "all"
MEDIA_FOLDER = "stagekeeper-media"
MAX_MEDIUM_NAME = 80  # it names a datastore file's medium in vSphere's 255-character paths
MAX_MEDIA = 1000  # listed at most (the library is shared: an installation has tens, not thousands)


def check_medium_name(value: object, field: str = "name") -> str:
    """A medium's name: one line of text, 1-80 characters, no path separators."""
    name = check_text(value, field, max_length=MAX_MEDIUM_NAME, required=True).strip()
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ValidationError(f"{field} may not contain / or \\ (it names a medium, not a path)", field=field)
    return name


def medium_path(medium_id: UUID) -> str:
    """Where a medium's file lies in the datastore: named by its id, so two uploads of the same
    name never write to one file, and a renamed medium never moves."""
    return f"{MEDIA_FOLDER}/{medium_id.hex}.iso"


class Medium(Aggregate):
    TOPIC = "stagekeeper:Medium"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:Medium.Created"

    @event("Uploaded", topic="stagekeeper:Medium.Uploaded")
    def __init__(
        self,
        id: UUID,  # eventsourcing takes the aggregate's id from this argument
        name: str,
        datacenter: str,
        datastore: str,
        path: str,
        size: int,
        sha256: str,
        actor: str,
        reason: str | None,
    ) -> None:
        self.name = name
        self.datacenter = datacenter
        self.datastore = datastore
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.uploaded_by = actor
        self.deleted = False
        self.deleted_by: str | None = None

    @property
    def datastore_path(self) -> str:
        return f"[{self.datastore}] {self.path}"

    def delete(self, actor: str, reason: str | None) -> None:
        if self.deleted:
            raise InvalidTransitionError(f"medium '{self.name}' is already deleted")
        self._deleted(actor=actor, reason=reason)

    @event("Deleted", topic="stagekeeper:Medium.Deleted")
    def _deleted(self, actor: str, reason: str | None) -> None:
        self.deleted = True
        self.deleted_by = actor

    def view(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "name": self.name,
            "datacenter": self.datacenter,
            "datastore": self.datastore,
            "path": self.path,
            "datastore_path": self.datastore_path,
            "size": self.size,
            "sha256": self.sha256,
            "uploaded_by": self.uploaded_by,
            "uploaded_at": self.created_on.isoformat(),
            "deleted": self.deleted,
        }
