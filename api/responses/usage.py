"""Resource usage: allocated (from events) and used (sampled from vCenter) over time."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from api.responses import Out, Position, Timestamp
from api.responses.services import StageQuota


class Allocated(Out):
    vcpus: int
    memory_mib: int
    disk_gib: int = Field(description="Provisioned disk the machines declare (GiB)")
    machines: int


class Used(Out):
    cpu_mhz: float = Field(description="Average CPU use (summary.quickStats.overallCpuUsage, summed over VMs)")
    memory_mib: float = Field(description="Average guest memory in use (quickStats.guestMemoryUsage)")
    committed_gib: float = Field(description="Average storage committed (summary.storage.committed)")
    vms: float = Field(description="Average number of VMs sampled")


class UsagePoint(Out):
    at: Timestamp
    allocated: Allocated = Field(description="What the deployments held at at + step (at `to` for the last point)")
    used: Used | None = Field(description="Average use in [at, at + step); null when nothing was sampled")


class ServiceUsage(Out):
    service_id: UUID
    stage: str | None
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    step: int = Field(description="Seconds between points")
    resolution: str = Field(description="Metrics buckets read: 5m (kept 7 days) or 1h (kept a year)")
    bucket_seconds: int
    points: list[UsagePoint]
    position: Position


class StageTotal(Out):
    service_id: UUID
    service: str
    stage: str
    allocated: Allocated
    quota: StageQuota | None


class StageTotals(Out):
    as_of: Timestamp | None
    stages: list[StageTotal]
    position: Position


class DatastorePoint(Out):
    at: Timestamp
    capacity_gib: float | None
    free_gib: float | None


class DatastoreSeries(Out):
    datastore: str
    points: list[DatastorePoint]


class CommittedPoint(Out):
    at: Timestamp
    committed_gib: float | None


class DatastoreConsumer(Out):
    datastore: str
    service_id: UUID
    service: str
    stage: str
    points: list[CommittedPoint]


class DatastoreUsage(Out):
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    step: int
    resolution: str
    datastores: list[DatastoreSeries] = Field(description="Capacity and free space (administrators only)")
    consumers: list[DatastoreConsumer] = Field(description="Committed storage per datastore, service and stage")
