"""Consoles and power of a deployment's machines: tickets (audited), screenshots, power requests."""

from __future__ import annotations

from functools import partial
from uuid import UUID

from domain import governance
from domain.application import Outcome, StagekeeperApplication
from domain.deployment import POWERED_ON, Deployment
from domain.errors import InvalidTransitionError
from domain.ports import ConsoleTicket
from domain.text import check_reason


class ConsoleCommands(StagekeeperApplication):
    def open_console(self, deployment_id: UUID, machine: str, actor: str) -> Outcome[ConsoleTicket]:
        """A console ticket for one running machine, issued to `actor` and recorded as ConsoleOpened.

        The ticket is asked of vCenter first and returned only once its ConsoleOpened event is
        stored, so no ticket reaches a caller without its audit record."""
        deployment = self.load(Deployment, deployment_id, "deployment")
        vm_id = self._running_vm(deployment, machine, "open the console of")
        ticket = self.vcenter.console_ticket(vm_id)
        step = partial(Deployment.record_console_opened, machine=machine, vm_id=vm_id, actor=actor)
        outcome = self.record_audit_fact(deployment_id, step)
        return Outcome(ticket, outcome)

    def machine_screenshot(self, deployment_id: UUID, machine: str) -> bytes:
        """A PNG of a running machine's screen (a read: not recorded)."""
        deployment = self.load(Deployment, deployment_id, "deployment")
        return self.vcenter.screenshot(self._running_vm(deployment, machine, "take a screenshot of"))

    def power_machine(
        self, deployment_id: UUID, machine: str, action: object, actor: str, reason: str | None = None
    ) -> Outcome[Deployment]:
        """Ask for one machine of a deployed deployment to be powered on, off or reset; the process
        manager carries it out and records MachinePowerChanged or PowerFailed."""
        reason = check_reason(reason)
        governance.admit(self, "power", deployment_id, actor, reason)

        def attempt() -> Outcome[Deployment]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            deployment.request_power(machine, str(action) if isinstance(action, str) else "", actor, reason)
            return Outcome(deployment, self.commit(deployment))

        return self.retrying(attempt)

    def record_audit_fact(self, deployment_id: UUID, step: partial[None]) -> int:
        def attempt() -> Outcome[None]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            step(deployment)
            return Outcome(None, self.commit(deployment))

        return self.retrying(attempt).position

    @staticmethod
    def _running_vm(deployment: Deployment, machine: str, action: str) -> str:
        found = deployment.running_machine(machine, action)
        if found.get("power") != POWERED_ON:
            raise InvalidTransitionError(f"cannot {action} machine '{machine}': it is {found.get('power')}")
        return str(found["vm_id"])
