"""Request bodies. Shapes and types are checked here, strictly (no "yes" for true, no true for
1, no "3" for 3); the domain checks the rules (text, ranges, uniqueness, references) and names
the offending field itself."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.text import check_text
from domain.values import MAX_NAME


def _stage_reference(value: str) -> str:
    # Checked while the body is read, because routes look the stage up (for permissions)
    # before the command runs; the domain's text rule, raised as the domain's 422.
    return check_text(value, "stage", max_length=4 * MAX_NAME)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"reason"})


class Reason(Body):
    reason: str | None = Field(None, description="Why (kept in the audit log)")


class IpPoolIn(Body):
    cidr: str = Field(description="IPv4 network, e.g. 10.20.0.0/24")
    gateway: str
    dns: list[str] = []
    first: str | None = Field(None, description="First address handed out (default: first host)")
    last: str | None = Field(None, description="Last address handed out (default: last host)")


class VlanRangeIn(Body):
    first: int
    last: int


class StageIn(Body):
    name: str
    resource_pool: str = Field(description="Inventory path, e.g. /DC0/host/DC0_C0/Resources/payroll-test")
    restricted: bool = False
    ip_pools: list[IpPoolIn] = []
    dvswitch: str | None = Field(None, description="Fenced networks: the distributed switch for their port groups")
    vlan_range: VlanRangeIn | None = Field(None, description="Fenced networks: VLAN ids to use (1-4094)")
    fence_gateway_template: str | None = Field(None, description="Fenced networks: the gateway VM's template")
    external_network: str | None = Field(None, description="Fenced networks: the gateway's outside network")
    fence: Literal["optional", "always"] = Field("optional", description='"always": every deployment is fenced')
    copy_mode: Literal["full", "linked"] = Field("full", description="Copies of live deployments: full or linked")
    extra_pools: list[str] = Field(
        [], description="More resource pools (other clusters) placement may put the stage's machines in"
    )


class ServiceCreate(Reason):
    name: str
    description: str = ""
    stages: list[StageIn]


class ServicePatch(Reason):
    name: str | None = Field(None, description="A new name (unique, case-insensitively)")
    description: str | None = None


class StageCreate(StageIn):
    position: int | None = Field(None, description="Index to insert at (default: last)")
    reason: str | None = None


class ApprovalPolicyIn(Body):
    required: int = Field(description="Distinct approvers needed (1-10)")
    group: str = Field(description="Group (directory DN or local group) approvers belong to")
    requester_may_approve: bool = False
    expiry_hours: int | None = Field(None, description="A request nobody decided expires after this long")


class QuotaIn(Body):
    vcpus: int | None = Field(None, description="Most vCPUs the stage may hold (null: no limit)")
    memory_mib: int | None = Field(None, description="Most memory (MiB) the stage may hold (null: no limit)")
    disk_gib: int | None = Field(None, description="Most provisioned disk (GiB) the stage may hold (null: no limit)")


class VerificationCheckIn(Body):
    kind: Literal["http", "tcp", "tools"]
    port: int | None = Field(None, description="http (default 80) and tcp: the port probed on each machine")
    path: str | None = Field(None, description="http: the path fetched (default /)")
    expect_status: int | None = Field(None, description="http: the status expected (default 200)")


class VerificationIn(Body):
    checks: list[VerificationCheckIn] = Field(description="Run on every machine; none: no verification")
    deadline_seconds: int | None = Field(None, description="How long the checks may take to pass (default 300)")
    rollback: bool | None = Field(None, description="On failure, demote (or swap back) on its own")


class LeasePolicyIn(Body):
    default: str | None = Field(None, description='Lease given at deploy, ISO-8601 ("P7D"); none: no lease')
    maximum: str | None = Field(None, description="Longest lease from now a deploy or extension may ask")
    warning: str | None = Field(None, description="LeaseExpiring this long before expiry (default P1D)")
    on_expiry: Literal["undeploy", "power-off", "archive"] = "undeploy"
    idle_days: int | None = Field(None, description="Undeploy deployments idle this many days (keep exempts)")


class StagePatch(Reason):
    name: str | None = None
    resource_pool: str | None = None
    restricted: bool | None = None
    ip_pools: list[IpPoolIn] | None = None
    dvswitch: str | None = Field(None, description="Fence settings: those not given stay; null clears")
    vlan_range: VlanRangeIn | None = None
    fence_gateway_template: str | None = None
    external_network: str | None = None
    fence: Literal["optional", "always"] | None = None
    copy_mode: Literal["full", "linked"] | None = None
    approvals: ApprovalPolicyIn | None = Field(
        None, description="Approvals needed for a promote, copy, swap, upgrade or restore into the stage; null: none"
    )
    soak_seconds: int | None = Field(None, description="A deployment is promoted out of the stage only after this long")
    quota: QuotaIn | None = Field(None, description="Stage quota (null or every limit null: no quota)")
    extra_pools: list[str] | None = Field(None, description="More resource pools placement may use (replaces them)")
    verification: VerificationIn | None = Field(None, description="Checks after a promote, copy, swap or upgrade")
    lease_policy: LeasePolicyIn | None = Field(None, description="Leases in this stage (null: nothing expires)")


class StageOrder(Reason):
    order: list[str]


class DiskIn(Body):
    size_gib: int


class NicIn(Body):
    network: str


class CustomizationIn(Body):
    os: Literal["linux", "windows"] = "linux"
    hostname: str | None = None
    ip_mode: Literal["static-pool", "dhcp"] = "static-pool"


class StartOrderIn(Body):
    group: int = Field(0, description="Groups start in ascending order (0-99)")
    delay_seconds: int | None = Field(
        None, description="wait_for delay: seconds to wait after the group starts; tools: the most to wait (0-3600)"
    )
    wait_for: Literal["delay", "tools"] = Field("delay", description="What the next group waits for")


class PlacementIn(Body):
    tier: str | None = Field(None, description="Machines of one tier go to different hosts (default: name less digits)")
    affinity_group: str | None = Field(None, description="Machines of one affinity group go to the same host")


class MachineIn(Body):
    name: str
    template: str
    cpus: int | None = Field(None, description="Default: the template's (or 1 when it has none)")
    memory_mib: int | None = Field(None, description="Default: the template's (or 1024 when it has none)")
    clone_mode: Literal["full", "linked"] = "full"
    disks: list[DiskIn] = []
    nics: list[NicIn] = []
    customization: CustomizationIn | None = None
    start_order: StartOrderIn | None = Field(None, description="When it starts on deploy and power-on")
    placement: PlacementIn | None = Field(None, description="Placement rules: its tier and affinity group")
    iso: str | None = Field(None, description="A media library medium's name: attached as a connected CD-ROM on deploy")


class MachineBody(MachineIn):
    reason: str | None = None


class NetworkIn(Body):
    name: str
    description: str = ""


class NetworkBody(NetworkIn):
    reason: str | None = None


class ConfigurationCreate(Reason):
    name: str
    description: str = ""
    networks: list[NetworkIn] = []
    machines: list[MachineIn] = []


class ConfigurationPatch(Reason):
    name: str | None = None
    description: str | None = None
    networks: list[NetworkIn] | None = None
    machines: list[MachineIn] | None = None


class Governed(Reason):
    """A lifecycle command's body: the admission gate reads these (api/gate.py)."""

    override_freeze: bool = Field(False, description="Go through a freeze window (needs a reason and its group)")
    at: str | None = Field(None, description='Promote only: when to run, e.g. "2026-12-01T22:00:00+01:00"')


class RebalanceRequest(Governed):
    dry_run: bool = Field(True, description="Only answer the plan; record and carry out nothing")


class DeployRequest(Governed):
    stage: Annotated[str, AfterValidator(_stage_reference)]
    configuration_version: int | None = Field(None, description="Default: the latest version")
    fence: bool = Field(False, description="Deploy behind a fence (own port groups and a NAT gateway)")
    lease: str | None = Field(None, description='Lease, ISO-8601 duration ("P3D"); default: the stage\'s')
    expires_at: str | None = Field(None, description="Or the lease's end, ISO-8601 date-time with offset")


class SnapshotRequest(Governed):
    name: str = Field(description="The snapshot's name (unique within the deployment)")


class RevertRequest(Governed):
    snapshot: str = Field(description="The name of one of the deployment's snapshots")


class SwapRequest(Governed):
    replaces: str = Field(description="Id of the deployment this one replaces (in its stage)")
    keep_previous: bool = Field(True, description="Keep the replaced deployment, powered off (else undeploy it)")
    destroy_vms: bool | None = Field(
        None,
        description="With keep_previous false and a captured replaced deployment: true destroys its VMs; "
        "otherwise Stagekeeper lets go of them (removes its tags, leaves them powered off).",
    )


class CopyRequest(Governed):
    stage: Annotated[str, AfterValidator(_stage_reference)]
    fence: bool = Field(False, description="Copy behind a fence (the copy keeps the source's IPs and MACs)")


class RestoreRequest(Reason):
    version: int | None = Field(None, description="The version to bring back")
    as_of: str | None = Field(None, description="Or: bring back the version current at this ISO 8601 time")


class TemplateImport(Reason):
    names: list[str] | None = None
    all: bool | None = None


class GrantRequest(Reason):
    role: Literal["viewer", "service-owner", "stage-operator"]
    group: str | None = Field(None, description="Directory group DN, or oidc:<group> as the sign-on provider sends it")
    user: str | None = Field(None, description="Directory user name (uid)")
    stage: str | None = Field(None, description="Stage name, for stage-operator")


class TokenCreate(Body):
    name: str
    expires_in_days: int = 90


class RetireRequest(Body):
    reason: str = Field(description="Why it is retired (kept in the audit log)")


def machine_dict(machine: MachineIn) -> dict[str, Any]:
    data = machine.model_dump(exclude_unset=True, exclude={"reason"})
    if data.get("customization") and data["customization"].get("hostname") is None:
        data["customization"].pop("hostname", None)
    return data


class LeaseChange(Reason):
    extend_by: str | None = Field(None, description='Add this much to the lease, ISO-8601 ("P2D")')
    expires_at: str | None = Field(None, description="Or set its end (within the stage's maximum)")
    keep: bool | None = Field(None, description="true: exempt from idle reaping")


class WebhookCreate(Reason):
    url: str = Field(description="http:// or https:// URL that receives the signed POSTs")
    kinds: list[Literal["approval-requested", "deployment-failed", "drift", "lease-expiring"]]
    service_id: str | None = Field(None, description="One service (its owners); omitted: every service (admins)")
