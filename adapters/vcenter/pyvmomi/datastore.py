"""The pyvmomi driver's datastore files (the DatastoreFiles port).

Uploads go through vCenter's datastore file access (HTTP PUT /folder/<path>?dcPath=&dsName=),
with the session's cookie, one chunk at a time and a Content-Length, so a large ISO is never
held in memory; folders are made with the FileManager, files are found with the datastore
browser's SearchDatastore (matchPattern) and deleted with DeleteDatastoreFile. A CD-ROM is given
an ISO backing by a VM reconfiguration.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterable
from contextlib import suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from pyVmomi import vim

from adapters.vcenter.pyvmomi import inventory
from domain.errors import UnavailableError, VCenterFaultError, VCenterObjectNotFoundError
from domain.media_ports import DatastoreFile

if TYPE_CHECKING:
    from adapters.vcenter.pyvmomi.session import Session


def _connection(session: Session) -> http.client.HTTPConnection:
    parts = urlsplit(session.settings.url)
    timeout = session.settings.task_timeout
    if parts.scheme != "https":
        return http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    context = ssl.create_default_context(cafile=session.settings.ca_bundle)
    if not session.settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return http.client.HTTPSConnection(parts.hostname or "", parts.port or 443, timeout=timeout, context=context)


class DatastoreAccess:
    """Datastore files and CD-ROM backings over one driver's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _datacenter(self, name: str) -> Any:
        content = self.session.content
        dc = self.session.call("find datacenter", lambda: inventory.datacenter(content, name))
        if dc is None:
            raise VCenterObjectNotFoundError(f"datacenter '{name}' not found in vCenter")
        return dc

    def _datastore(self, dc: Any, name: str, datacenter: str) -> Any:
        found = self.session.call("find datastore", lambda: next((d for d in dc.datastore if d.name == name), None))
        if found is None:
            raise VCenterObjectNotFoundError(f"datastore '{name}' not found in datacenter '{datacenter}'")
        return found

    def _make_folder(self, dc: Any, datastore: str, folder: str) -> None:
        manager = self.session.content.fileManager

        def make() -> None:
            with suppress(vim.fault.FileAlreadyExists):
                manager.MakeDirectory(name=f"[{datastore}] {folder}", datacenter=dc, createParentDirectories=True)

        self.session.call(f"make folder {folder}", make)

    def upload_file(self, datacenter: str, datastore: str, path: str, chunks: Iterable[bytes], size: int) -> None:
        dc = self._datacenter(datacenter)
        self._datastore(dc, datastore, datacenter)
        folder = path.rpartition("/")[0]
        if folder:
            self._make_folder(dc, datastore, folder)
        # The body cannot be sent twice: make sure the session is alive (logging in again if not)
        # before the PUT, rather than meeting a 401 after the stream is spent.
        self.session.call("check session", lambda: self.session.content.sessionManager.currentSession)
        cookie = self.session.connect()._stub.cookie
        target = f"/folder/{quote(path)}?{urlencode({'dcPath': datacenter, 'dsName': datastore})}"
        try:
            self._put(target, cookie, path, chunks, size)
        except BaseException:
            # A cut-off body (the caller's stream failed, or gave too few bytes) may still have
            # left a partial file (vcsim keeps one): remove it, then say what went wrong.
            with suppress(VCenterFaultError, UnavailableError):
                self.delete_file(datacenter, datastore, path)
            raise

    def _put(self, target: str, cookie: str, path: str, chunks: Iterable[bytes], size: int) -> None:
        connection = _connection(self.session)
        sent = 0
        try:
            connection.putrequest("PUT", target)
            connection.putheader("Cookie", cookie)
            connection.putheader("Content-Type", "application/octet-stream")
            connection.putheader("Content-Length", str(size))
            connection.endheaders()
            for chunk in chunks:
                sent += len(chunk)
                if sent > size:
                    break
                connection.send(chunk)
            if sent != size:
                connection.close()  # vCenter sees a cut-off body and keeps no file
                raise VCenterFaultError(
                    f"vCenter fault during upload of {path}: {sent} bytes given for the {size} announced"
                )
            answer = connection.getresponse()
            answer.read()
        except OSError as error:
            raise UnavailableError(f"vCenter unreachable during upload of {path}: {error}") from error
        finally:
            connection.close()
        if answer.status not in (200, 201, 204):
            raise VCenterFaultError(f"vCenter fault during upload of {path}: HTTP {answer.status} {answer.reason}")

    def delete_file(self, datacenter: str, datastore: str, path: str) -> bool:
        dc = self._datacenter(datacenter)
        self._datastore(dc, datastore, datacenter)
        manager = self.session.content.fileManager
        name = f"[{datastore}] {path}"
        try:
            task = self.session.call(
                f"delete {name}", lambda: manager.DeleteDatastoreFile_Task(name=name, datacenter=dc)
            )
            self.session.wait(task, f"deletion of {name}")
        except VCenterObjectNotFoundError:
            return False
        except VCenterFaultError as fault:
            if "FileNotFound" in fault.message:
                return False
            raise
        return True

    def search_datastore(self, datacenter: str, datastore: str, folder: str, pattern: str) -> list[DatastoreFile]:
        dc = self._datacenter(datacenter)
        store = self._datastore(dc, datastore, datacenter)
        folder = folder.strip("/")
        spec = vim.host.DatastoreBrowser.SearchSpec(
            matchPattern=[pattern], details=vim.host.DatastoreBrowser.FileInfo.Details(fileSize=True, fileType=True)
        )
        where = f"[{datastore}] {folder}"
        try:
            task = self.session.call(
                f"search {where}", lambda: store.browser.SearchDatastore_Task(datastorePath=where, searchSpec=spec)
            )
            result = self.session.wait(task, f"search of {where}")
        except VCenterFaultError as fault:
            if "FileNotFound" in fault.message or isinstance(fault, VCenterObjectNotFoundError):
                return []
            raise
        files = [
            DatastoreFile(datastore, f"{folder}/{f.path}" if folder else f.path, int(f.fileSize or 0))
            for f in (getattr(result, "file", None) or [])
            if not isinstance(f, vim.host.DatastoreBrowser.FolderInfo)
        ]
        return sorted(files, key=lambda f: f.path)

    def attach_iso(self, vm: Any, vm_id: str, datastore_path: str) -> None:
        content = self.session.content

        def plan() -> Any:
            devices = list(inventory.properties_of(content, vm, ["config.hardware.device"]).get(
                "config.hardware.device") or [])  # fmt: skip
            return iso_change(devices, datastore_path, vm_id)

        change = self.session.call("plan CD-ROM", plan)
        if change is not None:
            spec = vim.vm.ConfigSpec(deviceChange=[change])
            task = self.session.call("attach ISO", lambda: vm.ReconfigVM_Task(spec=spec))
            self.session.wait(task, f"CD-ROM of {vm_id}")

    def vm_isos(self, vm: Any) -> list[str]:
        content = self.session.content

        def read() -> list[str]:
            devices = inventory.properties_of(content, vm, ["config.hardware.device"]).get("config.hardware.device")
            return [
                str(d.backing.fileName)
                for d in devices or []
                if isinstance(d, vim.vm.device.VirtualCdrom)
                and isinstance(d.backing, vim.vm.device.VirtualCdrom.IsoBackingInfo)
            ]

        return self.session.call("read CD-ROMs", read)


def iso_change(devices: list[Any], datastore_path: str, vm_id: str) -> Any | None:
    """The device change giving the first CD-ROM (or a new one on a free IDE slot) the ISO,
    connected now and at power-on; None when it is so already."""
    connect = vim.vm.device.VirtualDevice.ConnectInfo(connected=True, startConnected=True, allowGuestControl=True)
    backing = vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=datastore_path)
    cdrom = next((d for d in devices if isinstance(d, vim.vm.device.VirtualCdrom)), None)
    change = vim.vm.device.VirtualDeviceSpec()
    if cdrom is not None:
        current = cdrom.backing
        same = isinstance(current, vim.vm.device.VirtualCdrom.IsoBackingInfo) and current.fileName == datastore_path
        if same and cdrom.connectable is not None and cdrom.connectable.startConnected:
            return None
        cdrom.backing, cdrom.connectable = backing, connect
        change.operation, change.device = vim.vm.device.VirtualDeviceSpec.Operation.edit, cdrom
        return change
    for controller in devices:
        if isinstance(controller, vim.vm.device.VirtualIDEController):
            used = {d.unitNumber for d in devices if getattr(d, "controllerKey", None) == controller.key}
            free = next((unit for unit in (0, 1) if unit not in used), None)
            if free is not None:
                device = vim.vm.device.VirtualCdrom(
                    key=-1, controllerKey=controller.key, unitNumber=free, backing=backing, connectable=connect
                )
                change.operation, change.device = vim.vm.device.VirtualDeviceSpec.Operation.add, device
                return change
    raise VCenterFaultError(f"vCenter fault during CD-ROM of {vm_id}: no free IDE slot for a CD-ROM")
