"""vCenter resource pool inventory paths: /<datacenter>/host/<cluster>/Resources[/<pool>...]."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import ValidationError
from domain.text import check_text

# vSphere limits inventory object names to 80 characters.
MAX_SEGMENT = 80
MAX_PATH = 1024


def check_segment(segment: str, field: str) -> str:
    """One name of an inventory path: vSphere's 80 characters, no refused character, and never
    '.', '..' or blank (they would climb out of, or hide inside, the intended pool)."""
    if segment in (".", "..") or not segment.strip():
        raise ValidationError(
            f"{field}: a path segment must be a name, not {segment!r}",
            field=field,
        )
    if len(segment) > MAX_SEGMENT:
        raise ValidationError(
            f"{field}: each name in the path must be at most {MAX_SEGMENT} characters (vSphere's limit)",
            field=field,
        )
    return check_text(segment, field, max_length=MAX_SEGMENT)


@dataclass(frozen=True)
class PoolPath:
    """A vCenter resource pool inventory path: /<datacenter>/host/<cluster>/Resources[/<pool>...]."""

    datacenter: str
    cluster: str
    pools: tuple[str, ...]

    @classmethod
    def parse(cls, value: object, field_name: str = "resource_pool") -> PoolPath:
        if not isinstance(value, str) or not value.startswith("/"):
            raise ValidationError(
                f"{field_name} must be an inventory path such as /DC0/host/DC0_C0/Resources/payroll-test",
                field=field_name,
            )
        check_text(value, field_name, max_length=MAX_PATH)
        parts = value.strip("/").split("/")
        if len(parts) < 4 or parts[1] != "host" or parts[3] != "Resources":
            raise ValidationError(
                f"{field_name} must look like /<datacenter>/host/<cluster>/Resources[/<pool>...]",
                field=field_name,
            )
        for part in parts:
            check_segment(part, field_name)
        return cls(datacenter=parts[0], cluster=parts[2], pools=tuple(parts[4:]))

    @property
    def path(self) -> str:
        return "/".join(["", self.datacenter, "host", self.cluster, "Resources", *self.pools])

    @property
    def cluster_path(self) -> str:
        return f"/{self.datacenter}/host/{self.cluster}"

    def __str__(self) -> str:
        return self.path
