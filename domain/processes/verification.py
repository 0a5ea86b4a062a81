"""Verification steps of the process manager (rules in domain/verification.py).

When a promote (Moved into the next stage), a copy (Deployed, of a copy), a swap (Swapped, not a
swap-back) or an upgrade (Upgraded) completes into a stage that names checks, VerificationStarted
is recorded with its deadline (Clock port) and the checks run once at once. Until they pass or the
deadline passes, `recheck` runs them again (the drift worker's thread calls it on its clock), so
the process manager's thread is never held for the deadline. On failure: VerificationFailed with
every result, and, when the stage says so, a demote (after a promote) or a swap-back (after a swap
whose replaced deployment is kept). Nothing automatic undoes a deliberate move: a deployment moved,
swapped or undeployed while it was being verified ends its verification with no rollback.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from domain import verification
from domain.deployment import DEPLOYED, Deployment
from domain.errors import ConflictError, NotFoundError, VCenterFaultError
from domain.ports import VCenterDriver
from domain.stagekeeper import Stagekeeper
from domain.verification import Prober

log = logging.getLogger(__name__)
ACTOR = "stagekeeper"


class VerificationSteps:
    def __init__(self, app: Stagekeeper, vcenter: VCenterDriver, prober: Prober | None) -> None:
        self.app = app
        self.vcenter = vcenter
        self.prober = prober

    # -- starting ------------------------------------------------------------------------------
    def after_event(self, event: Any) -> None:
        kind = type(event).__qualname__.rsplit(".", 1)[-1]
        after = self._after(kind, event)
        if after is not None:
            self.start(event.originator_id, after, event.originator_version)

    def _after(self, kind: str, event: Any) -> str | None:
        if kind == "Moved":
            return "promote" if event.direction == "promote" else None  # a demote is never verified
        if kind == "Upgraded":
            return "upgrade"
        if kind == "Deployed":
            deployment = self.app.deployment(event.originator_id, version=event.originator_version)
            return "copy" if deployment.copy_of is not None else None
        if kind == "Swapped":
            before = self.app.deployment(event.originator_id, version=event.originator_version - 1)
            return None if (before.swap or {}).get("back") else "swap"  # a swap-back is a rollback
        return None

    def start(self, deployment_id: UUID, after: str, for_version: int) -> None:
        deployment = self.app.deployment(deployment_id)
        if (deployment.verification or {}).get("for_version") == for_version:
            return  # started already (the event is being handled again)
        service = self.app.service(deployment.service_id)
        try:
            setting = service.stage(deployment.stage).get("verification")
        except NotFoundError:
            return
        if not setting:
            return
        deadline = self.app.clock.now() + timedelta(seconds=setting["deadline_seconds"])
        self.app.record_step(
            deployment_id,
            lambda d: d._verification_started(
                after=after, for_version=for_version, checks=setting["checks"], deadline=deadline.isoformat(),
                rollback=setting["rollback"], actor=ACTOR, reason=None,
            ),
        )  # fmt: skip
        self.recheck(deployment_id)

    # -- checking --------------------------------------------------------------------------------
    def recheck(self, deployment_id: UUID) -> None:
        """Run the checks of a running verification once; end it when they pass or time is up."""
        deployment = self.app.deployment(deployment_id)
        running = deployment.verification
        if running is None or running["state"] != "running":
            return
        if deployment.state != DEPLOYED:
            if deployment.state in ("undeploying", "undeployed", "failed"):
                self._end(deployment, False, [self._stopped(f"the deployment is {deployment.state}")], None)
            return  # busy (a user's command on its way): look again later
        if deployment.stage != running["stage"] or (running["after"] == "swap" and deployment.replaced is None):
            self._end(deployment, False, [self._stopped("the deployment moved or was swapped meanwhile")], None)
            return
        results = self._run(deployment, running["checks"])
        if all(r["ok"] for r in results):
            self._end(deployment, True, results, None)
            return
        if self.app.clock.now() < datetime.fromisoformat(running["deadline"]):
            return  # not yet: the next recheck runs them again
        self._end(deployment, False, results, self._roll_back(deployment, running, results))

    @staticmethod
    def _stopped(detail: str) -> dict[str, Any]:
        return {"check": "deployment", "machine": None, "target": None, "ok": False,
                "detail": f"{detail}: verification stopped, nothing rolled back"}  # fmt: skip

    def _run(self, deployment: Deployment, checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        targets = verification.targets(deployment)
        prober = self.prober
        if prober is None:
            return [{"check": c["kind"], "machine": None, "target": None, "ok": False,
                     "detail": "this process has no network prober"} for c in checks]  # fmt: skip
        guest = {vm.vm_id: vm.ip for vm in self.vcenter.find_vms(deployment.id)} if any(
            c["kind"] == "tools" for c in checks
        ) else {}  # fmt: skip

        def tools(vm_id: str | None) -> tuple[bool, str | None]:
            if vm_id is None:
                return False, None
            try:
                return self.vcenter.wait_for_tools(vm_id, 0), guest.get(vm_id)
            except VCenterFaultError:
                return False, None

        return [verification.run_check(c, t, prober, tools) for c in checks for t in targets]

    def _roll_back(self, deployment: Deployment, running: dict[str, Any], results: list[dict[str, Any]]) -> str | None:
        if not running["rollback"]:
            return None
        failed = "; ".join(f"{r['check']} {r['machine']}: {r['detail']}" for r in results if not r["ok"])[:1500]
        reason = f"verification after {running['after']} failed: {failed}"
        try:
            if running["after"] == "promote":
                self.app.demote(deployment.id, actor=ACTOR, reason=reason)
                return "demote"
            if running["after"] == "swap" and deployment.replaced is not None:
                previous = self.app.deployment(UUID(deployment.replaced))
                if previous.replaced_by == str(deployment.id):  # kept, still waiting to come back
                    self.app.swap_back(previous.id, actor=ACTOR, reason=reason)
                    return "swap-back"
        except ConflictError as refused:
            log.warning("verification rollback of %s refused: %s", deployment.id, refused.message)
        return None

    def _end(self, deployment: Deployment, passed: bool, results: list[dict[str, Any]], rollback: str | None) -> None:
        def step(d: Deployment) -> None:
            if (d.verification or {}).get("state") != "running":
                return  # ended meanwhile (a recheck and the process manager raced)
            if passed:
                d._verification_passed(results=results, actor=ACTOR, reason=None)
            else:
                d._verification_failed(results=results, rollback=rollback, actor=ACTOR, reason=None)

        self.app.record_step(deployment.id, step)

    def recheck_all(self, deployment_ids: list[UUID]) -> None:
        for deployment_id in deployment_ids:
            try:
                self.recheck(deployment_id)
            except NotFoundError:
                continue
