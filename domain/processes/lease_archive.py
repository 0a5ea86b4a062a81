"""A lease whose stage policy is "archive": the deployment is archived (Archive Now, by the lease),
then undeployed once the archive is complete. No machine is destroyed without its archive: a failed
archive leaves the deployment running (its LeaseExpired and the archive's failure say why).

Both steps are idempotent, so the archive process may meet the same events again after a restart:
an expiry already archived (an archive of the deployment by the lease, requested after the expiry)
is not archived twice, and a deployment no longer deployed is not undeployed again."""

from __future__ import annotations

import logging
from typing import Any

from domain.archive import COMPLETE, Archive
from domain.commands.leases import LEASE_ACTOR
from domain.deployment import DEPLOYED
from domain.errors import ConflictError, NotFoundError
from domain.stagekeeper import Stagekeeper

log = logging.getLogger("stagekeeper.leases")


def archive_on_expiry(app: Stagekeeper, expired: Any) -> None:
    deployment_id = expired.originator_id
    try:
        deployment = app.deployment(deployment_id)
    except NotFoundError:
        return
    if deployment.state != DEPLOYED:
        return
    mine = app._archives_of(
        lambda a: a.deployment_id == deployment_id and a.requested_by == LEASE_ACTOR and a.state != "failed"
    )
    if any(_requested_at(a) >= expired.timestamp for a in mine):
        return  # this expiry is archived (or being archived) already
    try:
        app.archive_now(deployment_id, LEASE_ACTOR, reason=f"lease expired ({expired.kind}): archived, then undeployed")
    except ConflictError as error:
        log.warning("lease of %s expired, its archive could not start: %s", deployment_id, error)


def undeploy_when_archived(app: Stagekeeper, archive: Archive) -> None:
    if archive.state != COMPLETE or archive.requested_by != LEASE_ACTOR:
        return
    try:
        deployment = app.deployment(archive.deployment_id)
    except NotFoundError:
        return
    if deployment.state != DEPLOYED:
        return
    try:
        app.undeploy(
            archive.deployment_id, LEASE_ACTOR, reason=f"lease expired; archived as {archive.id} before undeploying"
        )
    except ConflictError as error:
        # Stop the line, a freeze window...: the deployment stays (and its archive) until a person acts.
        log.warning("lease undeploy of %s after archive %s refused: %s", archive.deployment_id, archive.id, error)


def _requested_at(archive: Archive) -> Any:
    return archive.created_on
