"""Connection, task waits and fault translation for the pyvmomi driver.

Vendor faults stop here: callers see VCenterObjectNotFoundError (missing objects) and
VCenterFaultError (everything else vCenter refuses or fails at), each with vCenter's own message,
or UnavailableError (vCenter unreachable). An expired session is not a fault: the session logs in
again, once for all the threads that met it, and the call is made once more.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from adapters.vcenter.pyvmomi import inventory
from domain.errors import UnavailableError, VCenterFaultError, VCenterObjectNotFoundError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionSettings:
    url: str  # https://vcenter.example/sdk or http://127.0.0.1:8989/sdk
    user: str
    password: str
    verify_tls: bool = True
    ca_bundle: str | None = None
    task_timeout: float = 600.0


def describe_fault(fault: BaseException) -> str:
    name = type(fault).__name__
    message = getattr(fault, "msg", None) or ""
    for item in getattr(fault, "faultMessage", None) or []:
        message = message or getattr(item, "message", "")
    reason = getattr(fault, "reason", None)
    detail = message or (reason if isinstance(reason, str) else "") or str(fault)
    return f"{name}: {detail}".strip()


@contextmanager
def translated(operation: str, timeout: float | None = None) -> Iterator[None]:
    """Turn vSphere faults raised inside the block into the project's errors."""
    try:
        yield
    except TimeoutError as error:
        limit = f" within {timeout:g}s" if timeout else ""
        raise VCenterFaultError(f"vCenter did not finish {operation}{limit} (timed out)") from error
    except vmodl.fault.ManagedObjectNotFound as fault:
        raise VCenterObjectNotFoundError(f"vCenter: object gone during {operation}: {describe_fault(fault)}") from fault
    except (vim.fault.NotFound, vim.fault.InvalidName) as fault:
        raise VCenterObjectNotFoundError(f"vCenter: {operation}: {describe_fault(fault)}") from fault
    except vmodl.MethodFault as fault:
        raise VCenterFaultError(f"vCenter fault during {operation}: {describe_fault(fault)}") from fault
    except (ConnectionError, OSError) as error:
        raise UnavailableError(f"vCenter unreachable during {operation}: {error}") from error


class Session:
    """One authenticated connection (thread-safe for pyvmomi calls), with task waiting."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._si: Any = None
        # Bumped by every login: a thread that met an expired session logs in again only if no
        # other thread has done so since its call began.
        self._generation = 0
        self._content: Any = None  # the ServiceContent of this connection (a round trip to fetch)

    def connect(self) -> Any:
        with self._lock:
            if self._si is None:
                self._si = self._connect()
                self._generation += 1
            return self._si

    def _relogin(self, generation: int) -> None:
        with self._lock:
            if self._generation != generation or self._si is None:
                return  # another thread logged in already (or close() ran): just call again
            log.warning("vCenter session of %s expired; logging in again", self.settings.user)
            manager = self._si.content.sessionManager
            try:
                # Same stub: it takes the new session cookie, so every managed object the driver
                # holds (cached pools, templates, tasks in flight) stays usable.
                manager.Login(userName=self.settings.user, password=self.settings.password)
            except vim.fault.InvalidLogin as fault:
                raise VCenterFaultError(f"vCenter refused the login: {describe_fault(fault)}") from fault
            self._generation += 1

    def _authenticated(self, function: Callable[[], T]) -> T:
        """Call; on NotAuthenticated (the session expired or was terminated), log in and call once more."""
        self.connect()
        generation = self._generation
        try:
            return function()
        except vim.fault.NotAuthenticated:
            self._relogin(generation)
        return function()  # a second NotAuthenticated is a real refusal: translated as a fault

    def _connect(self) -> Any:
        parts = urlsplit(self.settings.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise VCenterFaultError("STAGEKEEPER_VCENTER_URL must look like https://vcenter.example/sdk")
        context: ssl.SSLContext | None = None
        kwargs: dict[str, Any] = {}
        if parts.scheme == "https":
            if self.settings.verify_tls:
                context = ssl.create_default_context(cafile=self.settings.ca_bundle)
                kwargs["sslContext"] = context
            else:
                kwargs["disableSslCertValidation"] = True
        with translated("login"):
            try:
                return SmartConnect(
                    host=parts.hostname,
                    port=parts.port or (443 if parts.scheme == "https" else 80),
                    user=self.settings.user,
                    pwd=self.settings.password,
                    protocol=parts.scheme,
                    path=parts.path or "/sdk",
                    # Every request is bounded too: a vCenter that stops answering mid-call (or a
                    # task that blocks the call) fails the step instead of hanging the worker.
                    httpConnectionTimeout=max(1, int(self.settings.task_timeout)),
                    **kwargs,
                )
            except vim.fault.InvalidLogin as fault:
                raise VCenterFaultError(f"vCenter refused the login: {describe_fault(fault)}") from fault

    @property
    def content(self) -> Any:
        si = self.connect()
        content = self._content
        if content is None:
            # Fetched once per connection: every driver call starts from it, and a relogin keeps the
            # same stub, so the references it holds stay valid.
            content = self._content = si.RetrieveContent()
        return content

    def close(self) -> None:
        with self._lock:
            if self._si is not None:
                try:
                    Disconnect(self._si)
                finally:
                    self._si = None
                    self._content = None

    def wait(self, task: Any, operation: str) -> Any:
        """Wait for a task with backoff; cancel it and fail after the configured timeout."""
        result, _ = self._wait(task, operation, lambda: (task.info, {}))
        return result

    def wait_reading(self, task: Any, operation: str, obj: Any, properties: list[str]) -> tuple[Any, dict[str, Any]]:
        """Wait as `wait` does, reading `properties` of `obj` in the same property-collector call
        as each look at the task (the task first, then the object): the look that finds the task
        done brings the object as the task left it, without a round trip of its own after it."""
        collector = vmodl.query.PropertyCollector
        spec = collector.FilterSpec(
            objectSet=[collector.ObjectSpec(obj=task, skip=False), collector.ObjectSpec(obj=obj, skip=False)],
            propSet=[
                collector.PropertySpec(type=vim.Task, pathSet=["info"]),
                collector.PropertySpec(type=type(obj), pathSet=properties),
            ],
        )

        def look() -> tuple[Any, dict[str, Any]]:
            result = self.content.propertyCollector.RetrievePropertiesEx([spec], collector.RetrieveOptions())
            found: dict[str, dict[str, Any]] = {}
            for item in result.objects if result is not None else []:
                inventory.check_session(item)
                found[item.obj._moId] = {p.name: p.val for p in item.propSet}
            if task._moId not in found or obj._moId not in found:
                raise vmodl.fault.ManagedObjectNotFound(obj=obj if task._moId in found else task)
            return found[task._moId]["info"], found[obj._moId]

        return self._wait(task, operation, look)

    def _wait(self, task: Any, operation: str, look: Callable[[], tuple[Any, dict[str, Any]]]) -> tuple[Any, Any]:
        deadline = time.monotonic() + self.settings.task_timeout
        delay = 0.02
        with translated(operation, self.settings.task_timeout):
            while True:
                info, read = self._authenticated(look)
                if info.state == vim.TaskInfo.State.success:
                    return info.result, read
                if info.state == vim.TaskInfo.State.error:
                    error = info.error
                    if isinstance(error, vmodl.fault.ManagedObjectNotFound):
                        raise VCenterObjectNotFoundError(
                            f"vCenter: object gone during {operation}: {describe_fault(error)}"
                        )
                    raise VCenterFaultError(f"vCenter fault during {operation}: {describe_fault(error)}")
                if time.monotonic() > deadline:
                    # A task that cannot be cancelled still ends here with the timeout error.
                    with suppress(vmodl.MethodFault):
                        task.CancelTask()
                    raise VCenterFaultError(
                        f"vCenter did not finish {operation} within {self.settings.task_timeout:g}s (timed out)"
                    )
                time.sleep(delay)
                delay = min(delay * 1.5, 1.0)

    def download(self, path: str, query: dict[str, str], operation: str) -> bytes:
        """GET a file from vCenter's HTTP interface (e.g. /folder/... of a datastore) with the
        session's cookie, TLS settings and timeout; an expired session logs in again once."""
        parts = urlsplit(self.settings.url)
        url = f"{parts.scheme}://{parts.netloc}{path}?{urlencode(query)}"
        context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=self.settings.ca_bundle)
            if not self.settings.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE

        def get() -> bytes:
            request = urllib.request.Request(url, headers={"Cookie": self.connect()._stub.cookie})  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.settings.task_timeout, context=context) as answer:  # noqa: S310
                    data: bytes = answer.read()
                    return data
            except urllib.error.HTTPError as error:
                if error.code == 401:
                    raise vim.fault.NotAuthenticated() from error
                if error.code == 404:
                    raise vim.fault.FileNotFound(file=path, msg=f"{path} not found on vCenter") from error
                raise vim.fault.FileFault(file=path, msg=f"HTTP {error.code} reading {path}") from error

        return self.call(operation, get)

    def call(self, operation: str, function: Callable[[], T]) -> T:
        with translated(operation, self.settings.task_timeout):
            return self._authenticated(function)
