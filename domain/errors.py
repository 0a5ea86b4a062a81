"""Domain errors. The API maps each class to one HTTP status in one place (api/errors.py)."""

from __future__ import annotations


class StagekeeperError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(StagekeeperError):
    """Input breaks a rule; `field` names the offending field (dotted path)."""

    code = "invalid"


class NotFoundError(StagekeeperError):
    """No such service, configuration, deployment, stage or template."""

    code = "not_found"


class ConflictError(StagekeeperError):
    """The command conflicts with the current state (duplicate name, occupied stage...)."""

    code = "conflict"


class InvalidTransitionError(ConflictError):
    """The aggregate's state does not allow this command (e.g. promoting past the last stage)."""

    code = "invalid_transition"


class ConcurrencyError(ConflictError):
    """Another command changed the same aggregate at the same time and won."""

    code = "concurrent_modification"


class PreconditionFailedError(StagekeeperError):
    """The caller's expected version (If-Match) is not the current version."""

    code = "precondition_failed"


class AuthenticationError(StagekeeperError):
    """Missing or wrong credentials."""

    code = "unauthenticated"


class PermissionDeniedError(StagekeeperError):
    """Authenticated, but not allowed to do this."""

    code = "forbidden"


class InfrastructureError(StagekeeperError):
    """vCenter (or another dependency) failed; the message carries the vendor's reason."""

    code = "infrastructure"


class UnavailableError(StagekeeperError):
    """A dependency is unreachable or a read model has not caught up in time."""

    code = "unavailable"


class TooManyRequestsError(StagekeeperError):
    """The caller holds as many of a bounded resource (e.g. open progress streams) as allowed."""

    code = "too_many_requests"


class VCenterFaultError(InfrastructureError):
    """vCenter refused or failed an operation (raised only by the drivers, where the vendor's fault
    enters). The process manager turns it into a failure event; a domain error never is one."""


class VCenterObjectNotFoundError(VCenterFaultError, NotFoundError):
    """vCenter has no such object (template, resource pool, VM, network): a fault met in vCenter,
    not an unknown id in a request."""

    code = "not_found"


class AddressExhaustedError(ConflictError):
    """A stage's IP pools (or a network's MAC range) have no free address left for a machine."""

    code = "addresses_exhausted"
