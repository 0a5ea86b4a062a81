"""Deploy steps of the media library: an attached ISO is checked on its datastore before any
clone, and connected to the machine's CD-ROM before the machine powers on.

vCenter (and vcsim) accept a CD-ROM backed by a file that does not exist, and the VM then fails
at power-on or boots without its installer: the file is looked up with SearchDatastore first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.application import StagekeeperApplication
from domain.commands.media import medium_named
from domain.errors import VCenterObjectNotFoundError
from domain.media import Medium
from domain.media_ports import datastore_files


def _medium(app: StagekeeperApplication, machine: str, iso: str) -> Medium:
    medium = medium_named(app, iso)
    if medium is None:
        raise VCenterObjectNotFoundError(
            f"machine '{machine}' attaches the ISO '{iso}', which the media library no longer has"
        )
    return medium


def check_media(app: StagekeeperApplication, vcenter: object, machines: Iterable[dict[str, Any]]) -> None:
    """Every ISO the machines attach is on its datastore (else the deployment fails naming the file)."""
    files = datastore_files(vcenter)
    for machine in machines:
        iso = machine["spec"].get("iso")
        if iso is None:
            continue
        medium = _medium(app, machine["name"], iso)
        folder, _, name = medium.path.rpartition("/")
        found = files.search_datastore(medium.datacenter, medium.datastore, folder, name)
        if not any(f.path == medium.path for f in found):
            raise VCenterObjectNotFoundError(
                f"the ISO file {medium.datastore_path} of medium '{iso}' (machine '{machine['name']}') is not on "
                f"datastore {medium.datastore}"
            )


def attach_medium(app: StagekeeperApplication, vcenter: object, vm_id: str, spec: dict[str, Any]) -> None:
    """Connect the machine's ISO (if it has one) to its VM's CD-ROM, at once and at every power-on."""
    iso = spec.get("iso")
    if iso is not None:
        datastore_files(vcenter).attach_iso(vm_id, _medium(app, spec["name"], iso).datastore_path)
