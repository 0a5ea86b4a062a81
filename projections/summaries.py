"""One human-readable line per event type, saying what changed (before -> after)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.diff import describe, diff_definitions, short
from domain.values import normalise_key
from projections import drift_summaries
from projections.archive_summaries import ARCHIVE_SUMMARIES
from projections.lease_summaries import LEASE_SUMMARIES
from projections.summaries_governance import GOVERNANCE_SUMMARIES

Data = dict[str, Any]
_RESIZED = ("cpus", "memory_mib", "disks", "nics")  # what an upgrade in place changes on a machine


def _stages(data: Data) -> str:
    return ", ".join(f"{s['name']} ({s['resource_pool']})" for s in data.get("stages", []))


def _pools(pools: list[Data]) -> str:
    return ", ".join(f"{p['cidr']} ({p['first']}-{p['last']})" for p in pools) or "none"


def _machine_change(data: Data) -> str:
    before, after = data["before"], data["machine"]
    if isinstance(before, dict) and isinstance(after, dict):
        name, old_name = after.get("name"), before.get("name")
        if (
            isinstance(name, str)
            and isinstance(old_name, str)
            and (old_name == name or normalise_key(old_name) == normalise_key(name))
        ):
            return _same_machine_change(before, after, name)
    changes = diff_definitions({"machines": [before]}, {"machines": [after]})
    return describe(changes)


def _same_machine_change(before: Data, after: Data, name: str) -> str:
    """`describe(diff_definitions(...))` of one machine whose name key stays, without building the
    general diff (most of a rebuild's audit summaries are these: tests/unit/test_summaries_fast.py
    compares both ways). Only the changed keys are sorted, not every key of the machine."""
    if before.keys() == after.keys():
        changed = [key for key, value in before.items() if after[key] != value]
        if len(changed) > 1:  # (most changes change one key)
            changed.sort()
    else:
        changed = sorted([key for key in before.keys() | after.keys() if before.get(key) != after.get(key)])
    if not changed and before == after:
        return "no change"
    # (A key added or dropped as null changes the machine but no field: "machine web1: ", as before.)
    described = ", ".join([f"{key} {short(before.get(key))} -> {short(after.get(key))}" for key in changed])
    return f"machine {name}: {described}"


def _range(r: Data | None) -> str:
    return f"{r['first']}-{r['last']}" if r else "none"


# What a stage without the key means (Service.set_fencing leaves the defaults out of its events).
_FENCE_DEFAULTS = {"fence": "optional", "copy_mode": "full"}


def _fence_setting(key: str, settings: Data) -> str:
    value = settings.get(key)
    if value is None:
        return _FENCE_DEFAULTS.get(key, "none")
    return _range(value) if key == "vlan_range" else str(value)


def _fencing_change(d: Data) -> str:
    before, after = d["before"], d["settings"]
    changed = [
        f"{key} {_fence_setting(key, before)} -> {_fence_setting(key, after)}"
        for key in sorted(set(before) | set(after))
        if _fence_setting(key, before) != _fence_setting(key, after)
    ]
    return f"stage '{d['stage']}' fence settings: {', '.join(changed) or 'unchanged'}"


def _policy(policy: Data) -> str:
    approvals = policy.get("approvals")
    parts = [f"{approvals['required']} approval(s) from '{approvals['group']}'" if approvals else "no approvals"]
    return ", ".join([*parts, f"soak {policy.get('soak_seconds') or 0} s"])


def _quota(quota: Data | None) -> str:
    limits = {"vcpus": "vCPUs", "memory_mib": "MiB memory", "disk_gib": "GiB disk"}
    return ", ".join(f"{quota[k]} {label}" for k, label in limits.items() if k in quota) if quota else "none"


def _stage_move(from_stage: str, to_stage: str) -> str:
    return f"in '{to_stage}'" + ("" if from_stage == to_stage else f" (moved from '{from_stage}')")


def _fence_plan(d: Data) -> str:
    networks = ", ".join(f"'{n['network']}' on {n['portgroup']} (VLAN {n['vlan']})" for n in d["networks"])
    nat = ", ".join(f"{n['machine']} {n['internal_ip']} -> {n['external_ip']}" for n in d["nat"]) or "none"
    gateway = d["gateway"]
    return f"fence planned: {networks}; gateway {gateway['vm_name']} at {gateway['external_ip']}; NAT {nat}"


def _swap_in(d: Data) -> str:
    verb = "swap back" if d["back"] else "swap"
    kept = "kept" if d["keep_previous"] else "undeployed"
    return (
        f"{verb} requested: replaces deployment {d['replaces']} {_stage_move(d['from_stage'], d['to_stage'])} "
        f"at {d['to_pool']}; the replaced one is {kept}"
    )


def _swap_out(d: Data) -> str:
    verb = "swap back" if d["back"] else "swap"
    fate = "its VMs let go of" if d.get("let_go") else "undeployed"  # let_go: recorded since capture
    if d["keep_previous"]:
        fate = "powered off and kept"
    return f"{verb} requested: to be replaced by deployment {d['replaced_by']}, then {fate}"


def _snapshot_done(d: Data) -> str:
    if d["action"] == "revert":
        return f"machine '{d['machine']}' reverted to snapshot '{d['name']}' and powered on"
    return f"machine '{d['machine']}' snapshot '{d['name']}' taken"


def _snapshot_ended(d: Data) -> str:
    what = "snapshot" if d["action"] == "snapshot" else "revert to snapshot"
    if d["failed"]:
        return f"{what} '{d['name']}' failed: {d.get('reason')}"
    return f"{what} '{d['name']}' done on every machine"


_SWAP_STEPS = {
    "off": "powered off",
    "moved": "moved into the target stage's pool",
    "joined": "left the fence (NICs joined the stage's networks)",
    "on": "powered on",
}


SUMMARIES: dict[str, Callable[[Data], str]] = {
    "Service.Registered": lambda d: f"registered service '{d['name']}' with stages {_stages(d)}",
    "Service.Renamed": lambda d: f"name: {d['before']!r} -> {d['name']!r}",
    "Service.ConfigurationRetired": lambda d: f"configuration '{d['name']}' retired",
    "Service.DescriptionChanged": lambda d: f"description: {d['before']!r} -> {d['description']!r}",
    "Service.StageAdded": lambda d: (
        f"added stage '{d['stage']['name']}' at position {d['position']} ({d['stage']['resource_pool']}"
        + (", restricted)" if d["stage"].get("restricted") else ")")
    ),
    "Service.StageRemoved": lambda d: f"removed stage '{d['stage']}'",
    "Service.StageRenamed": lambda d: f"renamed stage '{d['stage']}' -> '{d['new_name']}'",
    "Service.StagesReordered": lambda d: f"stage order: {', '.join(d['before'])} -> {', '.join(d['order'])}",
    "Service.StageMapped": lambda d: f"stage '{d['stage']}' resource pool: {d['before']} -> {d['resource_pool']}",
    "Service.StageRestrictionChanged": lambda d: (
        f"stage '{d['stage']}' restricted: {not d['restricted']} -> {d['restricted']}"
    ),
    "Service.StageIpPoolsChanged": lambda d: (
        f"stage '{d['stage']}' IP pools: {_pools(d['before'])} -> {_pools(d['ip_pools'])}"
    ),
    "Service.StageFencingChanged": _fencing_change,
    "Service.ResourcePoolCreated": lambda d: f"created resource pool {d['resource_pool']} for stage '{d['stage']}'",
    "Service.DeploymentAdmitted": lambda d: f"stage '{d['stage']}' admitted deployment {d['deployment_id']}",
    "Service.DeploymentReleased": lambda d: f"stage '{d['stage']}' released deployment {d['deployment_id']}",
    "Service.UpgradeAdmitted": lambda d: (
        f"stage '{d['stage']}' admitted the upgrade of deployment {d['deployment_id']} to version {d['version']}"
    ),
    "Service.Granted": lambda d: (
        f"granted {d['role']}"
        + (f" on stage '{d['stage']}'" if d.get("stage") else "")
        + f" to {'user ' + d['user'] if d.get('user') else 'group ' + str(d.get('group'))}"
    ),
    "Service.GrantRevoked": lambda d: (
        f"revoked {d['grant']['role']}"
        + (f" on stage '{d['grant']['stage']}'" if d["grant"].get("stage") else "")
        + f" from {'user ' + d['grant']['user'] if d['grant'].get('user') else 'group ' + str(d['grant'].get('group'))}"
    ),
    "Service.Retired": lambda d: "retired the service",
    "Service.StagePolicyChanged": lambda d: (
        f"stage '{d['stage']}' policy: {_policy(d['before'])} -> {_policy(d['policy'])}"
    ),
    "Configuration.Defined": lambda d: (
        f"defined configuration '{d['name']}' with {len(d['machines'])} machine(s) on {len(d['networks'])} network(s)"
    ),
    "Configuration.Renamed": lambda d: f"name: {d['before']!r} -> {d['name']!r}",
    "Configuration.Revised": lambda d: describe(d["changes"]),
    "Configuration.NetworkAdded": lambda d: f"added network '{d['network']['name']}'",
    "Configuration.NetworkRemoved": lambda d: f"removed network '{d['network']}'",
    "Configuration.MachineAdded": lambda d: (
        f"added machine '{d['machine']['name']}' ({d['machine']['template']}, {d['machine']['cpus']} vCPU, "
        f"{d['machine']['memory_mib']} MiB, {d['machine']['clone_mode']} clone)"
    ),
    "Configuration.MachineChanged": _machine_change,
    "Configuration.MachineRemoved": lambda d: f"removed machine '{d['machine_name']}'",
    "Configuration.Retired": lambda d: f"configuration '{d['name']}' retired",
    "Configuration.Restored": lambda d: f"restored version {d['source_version']}: {describe(d['changes'])}",
    "Deployment.Requested": lambda d: (
        f"requested deployment of '{d['configuration_name']}' v{d['configuration_version']} "
        f"({len(d['machines'])} machine(s)) to stage '{d['stage']}'"
    ),
    "Deployment.AddressesAssigned": lambda d: (
        f"machine '{d['machine']}' gets {d['addressing']['ip'] or 'DHCP'}"
        + (f", MAC {', '.join(n['mac'] for n in d['addressing']['macs'])}" if d["addressing"]["macs"] else "")
    ),
    "Deployment.ProvisioningStarted": lambda d: f"provisioning started (attempt {d['attempt']})",
    "Deployment.MachineProvisioned": lambda d: (
        f"machine '{d['machine']}' provisioned as VM {d['vm_name']}" + (f" ({d['ip']})" if d.get("ip") else "")
    ),
    "Deployment.Deployed": lambda d: "deployed",
    "Deployment.ProvisioningFailed": lambda d: f"provisioning failed: {d['reason']}",
    "Deployment.RetryRequested": lambda d: f"retry requested (attempt {d['attempt']})",
    "Deployment.MoveRequested": lambda d: f"{d['direction']} requested: '{d['from_stage']}' -> '{d['to_stage']}'",
    "Deployment.MachineMoved": lambda d: f"machine '{d['machine']}' moved to {d['resource_pool']}",
    "Deployment.MachineRecloned": lambda d: (
        f"machine '{d['machine']}' recloned as VM {d['vm_name']} in {d['resource_pool']} (source retired)"
    ),
    "Deployment.Moved": lambda d: f"{d['direction']}d: '{d['from_stage']}' -> '{d['to_stage']}'",
    "Deployment.MoveFailed": lambda d: f"move failed{' (rolled back)' if d['rolled_back'] else ''}: {d['reason']}",
    "Deployment.StageRenamed": lambda d: f"stage renamed '{d['old']}' -> '{d['new']}'",
    "Deployment.UndeployRequested": lambda d: f"undeploy requested (was {d['previous_state']})",
    "Deployment.MachineDestroyed": lambda d: f"machine '{d['machine']}' destroyed",
    "Deployment.Undeployed": lambda d: "undeployed",
    "Deployment.PowerRequested": lambda d: f"power {d['action']} of machine '{d['machine']}' requested",
    "Deployment.MachinePowerChanged": lambda d: f"machine '{d['machine']}' {d['action']}: now {d['power_state']}",
    "Deployment.PowerFailed": lambda d: f"power {d['action']} of machine '{d['machine']}' failed: {d['reason']}",
    "Deployment.Captured": lambda d: (
        "captured running VM(s) " + ", ".join(f"{m['vm_name']} ({m['vm_id']}) as '{m['name']}'" for m in d["machines"])
    ),
    "Deployment.MachineTagged": lambda d: f"VM {d['vm_id']} of machine '{d['machine']}' tagged",
    "Deployment.LetGoRequested": lambda d: f"let go of the captured VMs requested (was {d['previous_state']})",
    "Deployment.MachineReleased": lambda d: f"machine '{d['machine']}' let go: VM {d['vm_id']} untagged, left running",
    "Deployment.ConsoleOpened": lambda d: f"console of machine '{d['machine']}' ({d['vm_id']}) opened",
    "Deployment.UpgradeRequested": lambda d: f"upgrade requested: version {d['from_version']} -> {d['to_version']}",
    "Deployment.MachineReconfigured": lambda d: (
        f"machine '{d['machine']}' reconfigured: "
        + (
            ", ".join(
                f"{k} {d['before'].get(k)} -> {d['after'].get(k)}"
                for k in _RESIZED
                if d["before"].get(k) != d["after"].get(k)
            )
            or "no hardware change"
        )
        + (" (power cycled)" if d["power_cycled"] else "")
    ),
    "Deployment.MachineNicsChanged": lambda d: (
        f"NICs of machine '{d['machine']}': " + (", ".join(f"{n['network']} {n['mac']}" for n in d["macs"]) or "none")
    ),
    "Deployment.MachineRemoved": lambda d: f"machine '{d['machine']}' removed, its addresses released",
    "Deployment.MachineRebuilding": lambda d: (
        f"machine '{d['machine']}' rebuilt for its new {', '.join(d['changed'])}: VM destroyed, addresses released"
    ),
    "Deployment.Upgraded": lambda d: f"upgraded: version {d['from_version']} -> {d['to_version']}",
    "Deployment.UpgradeFailed": lambda d: (
        f"upgrade to version {d['to_version']} failed: {d['reason']}"
        + (f" (machines not added: {', '.join(d['dropped'])})" if d["dropped"] else "")
    ),
    "Deployment.DeploymentPowerRequested": lambda d: (
        f"power {d['action']} of the whole deployment requested ({', '.join(d['machines'])})"
    ),
    "Deployment.FenceRequested": lambda d: (
        f"fenced networks requested for {', '.join(repr(n) for n in d['networks']) or 'no network'} on switch "
        f"{d['dvswitch']} (VLANs {_range(d['vlan_range'])}), gateway from {d['gateway_template']} "
        f"on {d['external_network']}"
    ),
    "Deployment.FencePlanned": _fence_plan,
    "Deployment.FenceNetworkChanged": lambda d: (
        f"port group of fenced network '{d['network']}' " + ("created" if d["created"] else "deleted")
    ),
    "Deployment.FenceGatewayChanged": lambda d: (
        f"fence gateway provisioned as VM {d['vm_id']}" if d["vm_id"] else "fence gateway destroyed"
    ),
    "Deployment.CopyRequested": lambda d: (
        f"copy of deployment {d['source_deployment_id']} (stage '{d['source_stage']}', "
        f"v{d['source_configuration_version']}) requested, {'linked' if d['linked'] else 'full'} clones of "
        + (", ".join(f"{m['vm_name']} as '{name}'" for name, m in d["machines"].items()) or "no machine")
    ),
    "Deployment.Copied": lambda d: f"copied into stage '{d['stage']}' as deployment {d['copy_id']}",
    "Deployment.SnapshotRequested": lambda d: f"snapshot '{d['name']}' of every machine requested",
    "Deployment.RevertRequested": lambda d: f"revert of every machine to snapshot '{d['snapshot']}' requested",
    "Deployment.MachineSnapshotDone": _snapshot_done,
    "Deployment.SnapshotWorkEnded": _snapshot_ended,
    "Deployment.SwapRequested": _swap_in,
    "Deployment.SwapOutRequested": _swap_out,
    "Deployment.SwapStepDone": lambda d: (
        f"swap step '{d['step']}': machine '{d['machine']}' {_SWAP_STEPS.get(d['step'], d['step'])}"
    ),
    "Deployment.Swapped": lambda d: (
        f"swapped in for deployment {d['replaced']} {_stage_move(d['from_stage'], d['to_stage'])}"
        + (", left its fence" if d["left_fence"] else "")
    ),
    "Deployment.SwappedOut": lambda d: (
        f"swapped out: replaced by deployment {d['replaced_by']}, "
        + ("powered off and kept" if d["kept"] else "being undeployed")
    ),
    "Deployment.FenceNetworkAdded": lambda d: (
        f"fence network '{d['network']}' added: port group {d['portgroup']} (VLAN {d['vlan']})"
    ),
    "Deployment.FenceNetworkRemoved": lambda d: f"fence network '{d['network']}' removed with its port group",
    "Deployment.FenceNatAdded": lambda d: f"NAT: machine '{d['machine']}' {d['internal_ip']} -> {d['external_ip']}",
    "Deployment.FenceNatRemoved": lambda d: (
        f"NAT entry of machine '{d['machine']}' removed, its external address released"
    ),
    "Deployment.CopySnapshotRemoved": lambda d: (
        f"snapshot taken for this linked copy removed from the source VM of machine '{d['machine']}'"
    ),
    "Deployment.SnapshotTaken": lambda d: (
        f"snapshot '{d['name']}' taken at version {d['configuration_version']} of "
        f"{', '.join(d['machines']) or 'no machine'}"
    ),
    "Deployment.SwapAttemptFailed": lambda d: f"swap attempt {d['attempt']} failed: {d['reason']}",
    "Deployment.SwapFailed": lambda d: (
        f"swap with deployment {d['partner']} rolled back ({d['role']} side): {d['reason']}"
    ),
    "TemplateCatalogue.Opened": lambda d: "template catalogue opened",
    "TemplateCatalogue.TemplatesImported": lambda d: (
        f"imported template(s) {', '.join(t['name'] for t in d['templates'])}"
    ),
    "AddressPlan.Opened": lambda d: "address plan opened",
    "AddressPlan.ServiceRangesSet": lambda d: (
        f"IP ranges of service '{d['service_name']}': "
        + (", ".join(f"{stage} {p['first']}-{p['last']}" for stage, ps in d["stages"].items() for p in ps) or "none")
    ),
    "PoolPlan.Opened": lambda d: "pool plan opened",
    "PoolPlan.ServicePoolsSet": lambda d: (
        f"resource pools of service '{d['service_name']}': "
        + (", ".join(f"{stage} {path}" for path, stage in d["pools"].items()) or "none")
    ),
    "NameClaim.Claimed": lambda d: f"{d['kind']} name '{d['name']}' claimed",
    "NameClaim.Reclaimed": lambda d: f"{d.get('kind', 'name')} '{d['name']}' claimed again",
    "NameClaim.Released": lambda d: "name released",
    "Service.Imported": lambda d: f"imported from an export file ({d['records']} events, chain head {d['head'][:12]})",
    "LocalAccount.Opened": lambda d: f"local account '{d['username']}' created",
    "LocalAccount.PasswordChanged": lambda d: "local account password changed",
    "LocalAccount.ProfileChanged": lambda d: (
        f"local groups: {', '.join(d['groups']) or 'none'}"
        + (f"; display name '{d['display_name']}'" if d.get("display_name") else "")
    ),
    "LocalAccount.LockedOut": lambda d: f"locked out after {d['failures']} wrong passwords, until {d['until']}",
    "LocalAccount.Unlocked": lambda d: "unlocked",
    "LocalAccount.Disabled": lambda d: "local account disabled",
    "LocalAccount.Enabled": lambda d: "local account enabled",
    "ApiToken.Issued": lambda d: f"API token '{d['name']}' issued to {d['user']} (expires {d['expires_at']})",
    "ApiToken.Revoked": lambda d: "API token revoked",
    "RequestRecord.Received": lambda d: f"request with Idempotency-Key '{d['key']}' received",
    "RequestRecord.Answered": lambda d: f"request answered with status {d['status']}",
    "Refusal.Recorded": lambda d: f"refused {d['command']} ({d['code']}): {d['reason']}",
    **GOVERNANCE_SUMMARIES,
    "Service.StageQuotaChanged": lambda d: f"stage '{d['stage']}' quota: {_quota(d['before'])} -> {_quota(d['quota'])}",
    # Placement across clusters and hosts (domain/placement.py).
    "Service.StageExtraPoolsChanged": lambda d: (
        f"stage '{d['stage']}' other pools: {', '.join(d['before']) or 'none'} -> "
        f"{', '.join(d['extra_pools']) or 'none'}"
    ),
    "Deployment.MachinePlaced": lambda d: (
        f"machine '{d['machine']}' placed on host {d['host']} of {d['cluster']}, "
        f"datastore {d['datastore']}: {d['reason']}"
    ),
    "Deployment.RebalanceRequested": lambda d: (
        "rebalance requested: "
        + (", ".join(f"{m['machine']} {m['from_host']} -> {m['host']}" for m in d["moves"]) or "nothing to move")
    ),
    "Deployment.MachineRelocated": lambda d: (
        f"machine '{d['machine']}' moved from host {d['from_host']} to {d['host']}: {d['reason']}"
    ),
    "Deployment.RebalanceEnded": lambda d: (
        f"rebalance failed after {d['moved']} move(s): {d['reason']}"
        if d["failed"]
        else f"rebalanced: {d['moved']} move(s)"
    ),
    # The media library and safe delete (domain/media.py, domain/commands/storage.py).
    "Medium.Uploaded": lambda d: (
        f"ISO '{d['name']}' uploaded to [{d['datastore']}] {d['path']} ({d['size']} bytes, SHA-256 {d['sha256']})"
    ),
    "Medium.Deleted": lambda d: "ISO deleted from the media library",
    "TemplateCatalogue.TemplateRemoved": lambda d: f"template '{d['name']}' removed from the catalogue",
}

SUMMARIES.update(ARCHIVE_SUMMARIES)
SUMMARIES.update(LEASE_SUMMARIES)


def summarise(event_type: str, data: Data) -> str:
    formatter = SUMMARIES.get(event_type)
    if formatter is None:
        return event_type
    try:
        return formatter(data)
    except (KeyError, TypeError, IndexError):
        # An event recorded by an older version may lack a field: say what it was, not crash.
        return event_type


SUMMARIES.update(drift_summaries.SUMMARIES)
