"""A real OpenID Connect provider for the single sign-on tests: node's `oidc-provider` (from the
npm registry, installed by `npm ci` under scripts/oidc/ at first use, or by scripts/setup.sh --dev)
run by scripts/oidc/provider.mjs with one static client and three users:

- alice: groups `stagekeeper-users`, `payroll ops`
- bob: group `contractors`
- carol: groups `stagekeeper-users`, `stagekeeper-admins`

Its login and consent pages are the library's own (devInteractions: any password).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx

from scripts.vcsim_harness import free_port

HERE = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "stagekeeper-test"
CLIENT_SECRET = "stagekeeper-test-client-secret-0123456789"


def install() -> None:
    """npm ci under scripts/oidc (once): the provider and its dependencies, as package-lock.json pins them."""
    if (HERE / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is missing: scripts/setup.sh --dev installs Debian's nodejs and npm")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=600)


@dataclass
class OidcProviderProcess:
    issuer: str
    process: subprocess.Popen[bytes]
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start(*redirect_uris: str) -> OidcProviderProcess:
    """The provider on a free local port, accepting `redirect_uris`; stop() it when done."""
    install()
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        raise RuntimeError("node is missing: scripts/setup.sh --dev installs Debian's nodejs and npm")
    port = free_port()
    command = [node, str(HERE / "provider.mjs"), str(port), CLIENT_ID, CLIENT_SECRET, ",".join(redirect_uris)]
    process = subprocess.Popen(command, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    issuer = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(issuer + "/.well-known/openid-configuration", timeout=2).status_code == 200:
                return OidcProviderProcess(issuer=issuer, process=process)
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"oidc-provider did not start on {issuer}")
        time.sleep(0.1)


class _Forms(HTMLParser):
    """The forms of a page: action and their hidden and named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), {}))
        elif tag in ("input", "button") and self.forms and values.get("name"):
            self.forms[-1][1][values["name"]] = values.get("value", "")


def log_in(authorization_url: str, login: str, callback_prefix: str, max_steps: int = 12) -> str:
    """Drive the provider's own login and consent pages as a browser would (new cookie jar);
    returns the URL it redirects to under `callback_prefix` (the console's callback)."""
    with httpx.Client(timeout=10) as browser:
        url, method, data = authorization_url, "GET", None
        for _ in range(max_steps):
            response = browser.request(method, url, data=data)
            if response.is_redirect:
                url, method, data = urljoin(url, response.headers["location"]), "GET", None
                if url.startswith(callback_prefix):
                    return url
                continue
            forms = _Forms()
            forms.feed(response.text)
            if response.status_code != 200 or not forms.forms:
                raise RuntimeError(f"the provider answered {response.status_code}: {response.text[:300]}")
            action, fields = forms.forms[0]
            if "login" in fields or re.search(r'name="login"', response.text):
                fields.update(login=login, password="any-password")
            url, method, data = urljoin(url, action), "POST", fields
        raise RuntimeError("the provider did not redirect back")
