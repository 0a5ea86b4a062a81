"""A throwaway OpenLDAP slapd for tests and benchmarks, started by scripts/slapd.sh."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "dc=stagekeeper,dc=test"
BIND_DN = f"cn=stagekeeper,ou=services,{BASE}"
BIND_PASSWORD = "service-secret"
USER_BASE = f"ou=people,{BASE}"
GROUP_BASE = f"ou=groups,{BASE}"
ADMIN_GROUP = f"cn=stagekeeper-admins,{GROUP_BASE}"
OWNERS = f"cn=payroll-owners,{GROUP_BASE}"  # groupOfNames: olivia
OPERATORS = f"cn=payroll-ops,{GROUP_BASE}"  # posixGroup: oscar, petra
READERS = f"cn=payroll-readers,{GROUP_BASE}"  # groupOfNames: victor
PASSWORDS = {
    "alice": "alice-pw",  # administrator (stagekeeper-admins)
    "olivia": "olivia-pw",
    "oscar": "oscar-pw",
    "petra": "petra-pw",
    "victor": "victor-pw",
    "nobody": "nobody-pw",
    "o,brien": "tricky-pw",  # a DN-special character in the user name
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Slapd:
    port: int
    directory: Path
    tls_port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> str:
        return str(self.directory / "db" / "tls" / "ca.pem")

    def env(self) -> dict[str, str]:
        return {
            "STAGEKEEPER_LDAP_URL": self.url,
            "STAGEKEEPER_LDAP_BIND_DN": BIND_DN,
            "STAGEKEEPER_LDAP_BIND_PASSWORD": BIND_PASSWORD,
            "STAGEKEEPER_LDAP_USER_BASE": USER_BASE,
            "STAGEKEEPER_LDAP_GROUP_BASE": GROUP_BASE,
            "STAGEKEEPER_LDAP_ADMIN_GROUP": ADMIN_GROUP,
        }

    def start(self) -> None:
        log = (self.directory / "slapd.log").open("ab")
        command = [str(ROOT / "scripts" / "slapd.sh"), str(self.port), str(self.directory / "db")]
        if self.tls_port is not None:
            command.append(str(self.tls_port))
        self.process = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited: {(self.directory / 'slapd.log').read_text()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("slapd did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def start(directory: Path, tls: bool = False) -> Slapd:
    slapd = Slapd(free_port(), directory, free_port() if tls else None)
    slapd.start()
    return slapd
