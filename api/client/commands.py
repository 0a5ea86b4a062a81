"""Client subcommands of `stagekeeper`: each is one or two calls to the HTTP API of a server.

`stagekeeper login URL` first (stores a token); then `services`, `configurations`, `deployments`,
`deploy`, `promote`, `demote`, `retry`, `undeploy`, `copy`, `swap`, `history`, `diff`, `restore`,
`audit query`, `audit export --remote`, `grants`, `tokens`. `--wait` follows the progress stream;
`--output json` prints the server's JSON. Exit codes: see api/client/http.py."""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import unicodedata
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

import click
import httpx
from rich.console import Console

from api.client import credentials as stored
from api.client.http import DONE, REFUSED, USAGE, Api, ClientError, check, unreachable
from api.client.output import emit_json, fields, table
from api.client.progress import Bars, follow

F = TypeVar("F", bound=Callable[..., Any])
OUTPUT = click.option(
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True, help="json for scripts"
)
WAIT = click.option(
    "--wait", is_flag=True, help="Follow progress until the deployment rests (Ctrl-C stops waiting only)"
)
REASON = click.option("--reason", "-r", default=None, help="Why (kept in the audit log)")
DEPLOYMENT_COLUMNS = ["id", "configuration_name", "configuration_version", "stage", "state", "failure"]


def console() -> Console:
    # Piped output keeps whole values (a terminal's width would cut them into ellipses).
    out = Console(highlight=False, soft_wrap=True)
    return out if out.is_terminal else Console(highlight=False, soft_wrap=True, width=240)


def api() -> Api:
    try:
        found = stored.load()
    except ValueError as error:
        raise ClientError(str(error), USAGE) from error
    if found is None:
        hint = "run `stagekeeper login URL` (or set STAGEKEEPER_URL and STAGEKEEPER_TOKEN)"
        raise ClientError(f"not logged in: {hint}", USAGE)
    return Api(found)


def client_command(function: F) -> F:
    """Runs the command with an Api; a ClientError becomes its message on stderr and its exit code."""

    @wraps(function)
    def run(*args: Any, **kwargs: Any) -> int:
        try:
            return int(function(*args, **kwargs) or DONE)
        except ClientError as error:
            click.echo(f"stagekeeper: {error.message}", err=True)
            return error.exit_code

    return cast(F, run)


def wait_for(client: Api, deployment: dict[str, Any], output: str) -> int:
    out = console()
    machines = [m["name"] for m in deployment.get("machines", [])]
    after = int(deployment["version"])
    try:
        if output == "json":
            outcome = follow(client, str(deployment["id"]), lambda e: emit_json(out, e), after=after - 1)
            emit_json(out, {"id": deployment["id"], "state": outcome.state, "version": outcome.version})
            return outcome.exit_code
        with Bars(out, machines) as bars:
            outcome = follow(client, str(deployment["id"]), bars.event, after=after - 1)
            bars.finish(outcome)
    except KeyboardInterrupt:
        click.echo(
            f"\nstopped waiting; deployment {deployment['id']} goes on "
            f"(follow it again: stagekeeper deployments show {deployment['id']} --wait)",
            err=True,
        )
        return 130
    latest = client.get(f"/deployments/{deployment['id']}")
    failure = f": {latest['failure']}" if latest.get("failure") else ""
    out.print(f"deployment {deployment['id']} is {outcome.state}{failure}", highlight=False)
    return outcome.exit_code


def show_deployment(client: Api, deployment: dict[str, Any], output: str, wait: bool) -> int:
    if wait:
        if output == "table":
            fields(console(), deployment, ["id", "stage", "state", "configuration_name", "configuration_version"])
        return wait_for(client, deployment, output)
    out = console()
    if output == "json":
        emit_json(out, deployment)
        return DONE
    fields(out, deployment, [*DEPLOYMENT_COLUMNS, "target_stage", "resource_pool", "attempt", "created_at"])
    table(out, deployment.get("machines", []), ["name", "state", "vm_name", "ip", "power"], "machines")
    return DONE


def register(cli: click.Group) -> None:
    """Add the client commands to the `stagekeeper` group."""

    @cli.command()
    @click.argument("url")
    @click.option("--user", "-u", default=lambda: os.environ.get("USER", "admin"), help="User name")
    @click.option("--password-stdin", is_flag=True, help="Read the password from standard input")
    @click.option("--token", default=None, help="Store this existing API token instead of signing in")
    @click.option("--expires-in-days", default=90, show_default=True, type=click.IntRange(1, 365))
    @client_command
    def login(url: str, user: str, password_stdin: bool, token: str | None, expires_in_days: int) -> int:
        """Sign in to a server and store a token (file mode 0600)."""
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ClientError(f"URL must start with http:// or https://: {url!r}", USAGE)
        token_id = None
        if token is None:
            if password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = getpass.getpass(f"password for {user}: ")
            name = f"cli {socket.gethostname()}"[:64]
            with httpx.Client(base_url=f"{url}/api/v1", auth=(user, password), timeout=30.0) as http, unreachable(url):
                issued = check(http.post("/tokens", json={"name": name, "expires_in_days": expires_in_days})).json()
            token, token_id = issued["token"], issued.get("id")
        bearer = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"{url}/api/v1", headers=bearer, timeout=30.0) as http, unreachable(url):
            me = check(http.get("/me")).json()
        where = stored.save(stored.Credentials(url=url, token=token, user=me["user"], token_id=token_id))
        click.echo(f"logged in to {url} as {me['user']} (token kept in {where})")
        return DONE

    @cli.command()
    @client_command
    def logout() -> int:
        """Revoke the stored token and forget it."""
        found = stored.load()
        if found is None:
            click.echo("not logged in")
            return DONE
        if found.token_id:
            client = Api(found)
            try:
                client.call("DELETE", f"/tokens/{found.token_id}")
            except ClientError as error:
                click.echo(f"stagekeeper: the token could not be revoked ({error.message}); forgetting it", err=True)
        stored.forget()
        click.echo("logged out")
        return DONE

    @cli.group()
    def services() -> None:
        """Services you hold a role on."""

    @services.command("list")
    @OUTPUT
    @client_command
    def services_list(output: str) -> int:
        data = api().get("/services")
        if output == "json":
            emit_json(console(), data)
        else:
            table(console(), data["items"], ["id", "name", "version", "retired"], "services")
        return DONE

    @services.command("show")
    @click.argument("service")
    @OUTPUT
    @client_command
    def services_show(service: str, output: str) -> int:
        client = api()
        data = client.get(f"/services/{service_id(client, service)}")
        if output == "json":
            emit_json(console(), data)
            return DONE
        out = console()
        fields(out, data, ["id", "name", "description", "version"])
        stages = [{**s, "ip_pools": len(s.get("ip_pools") or [])} for s in data.get("stages", [])]
        table(out, stages, ["name", "resource_pool", "restricted", "ip_pools"], "stages")
        return DONE

    @cli.group()
    def configurations() -> None:
        """A service's configurations."""

    @configurations.command("list")
    @click.option("--service", "-s", required=True, help="Service id or name")
    @OUTPUT
    @client_command
    def configurations_list(service: str, output: str) -> int:
        client = api()
        data = client.get(f"/services/{service_id(client, service)}/configurations")
        if output == "json":
            emit_json(console(), data)
        else:
            table(console(), data["items"], ["id", "name", "version", "machine_count", "retired"], "configurations")
        return DONE

    @configurations.command("show")
    @click.argument("configuration")
    @click.option("--version", "version", type=click.IntRange(1), default=None)
    @click.option("--as-of", default=None, help="ISO 8601 instant")
    @OUTPUT
    @client_command
    def configurations_show(configuration: str, version: int | None, as_of: str | None, output: str) -> int:
        data = api().get(f"/configurations/{configuration}", version=version, as_of=as_of)
        if output == "json":
            emit_json(console(), data)
            return DONE
        out = console()
        fields(out, data, ["id", "name", "version", "description"])
        table(out, data.get("machines", []), ["name", "template", "cpus", "memory_mib", "os"], "machines")
        return DONE

    @cli.group()
    def deployments() -> None:
        """Deployments you may read."""

    @deployments.command("list")
    @click.option("--service", "-s", default=None, help="Service id or name")
    @click.option("--stage", default=None)
    @click.option("--state", default=None)
    @click.option("--limit", type=click.IntRange(1, 5000), default=100, show_default=True)
    @OUTPUT
    @client_command
    def deployments_list(service: str | None, stage: str | None, state: str | None, limit: int, output: str) -> int:
        client = api()
        sid = service_id(client, service) if service else None
        data = client.get("/deployments", service=sid, stage=stage, state=state, limit=limit)
        if output == "json":
            emit_json(console(), data)
        else:
            table(console(), data["items"], DEPLOYMENT_COLUMNS, "deployments")
        return DONE

    @deployments.command("show")
    @click.argument("deployment")
    @WAIT
    @OUTPUT
    @client_command
    def deployments_show(deployment: str, wait: bool, output: str) -> int:
        client = api()
        return show_deployment(client, client.get(f"/deployments/{deployment}"), output, wait)

    @cli.command()
    @click.argument("configuration")
    @click.option("--stage", required=True, help="Stage to deploy into")
    @click.option("--version", "version", type=click.IntRange(1), default=None, help="Default: the latest")
    @click.option("--fence", is_flag=True, help="Deploy behind a fence")
    @REASON
    @WAIT
    @OUTPUT
    @client_command
    def deploy(
        configuration: str, stage: str, version: int | None, fence: bool, reason: str | None, wait: bool, output: str
    ) -> int:
        """Deploy a configuration version into a stage."""
        client = api()
        body: dict[str, Any] = {"stage": stage, "fence": fence, "reason": reason}
        if version is not None:
            body["configuration_version"] = version
        created = client.post(f"/configurations/{configuration}/deployments", body)
        return show_deployment(client, created, output, wait)

    def lifecycle(action: str, help_text: str) -> None:
        @cli.command(name=action, help=help_text)
        @click.argument("deployment")
        @REASON
        @WAIT
        @OUTPUT
        @client_command
        def command(deployment: str, reason: str | None, wait: bool, output: str) -> int:
            client = api()
            moved = client.post(f"/deployments/{deployment}/{action}", {"reason": reason} if reason else None)
            return show_deployment(client, moved, output, wait)

    lifecycle("promote", "Move a deployment to the next stage.")
    lifecycle("demote", "Move a deployment back to the previous stage.")
    lifecycle("retry", "Provision a failed deployment again.")
    lifecycle("swap-back", "Put a swapped-out deployment back in place.")

    @cli.command()
    @click.argument("deployment")
    @click.option("--destroy-vms", is_flag=True, default=None, help="Captured deployments: destroy their VMs")
    @REASON
    @WAIT
    @OUTPUT
    @client_command
    def undeploy(deployment: str, destroy_vms: bool | None, reason: str | None, wait: bool, output: str) -> int:
        """Remove a deployment's VMs."""
        client = api()
        body: dict[str, Any] = {"reason": reason}
        if destroy_vms:
            body["destroy_vms"] = True
        return show_deployment(client, client.post(f"/deployments/{deployment}/undeploy", body), output, wait)

    @cli.command()
    @click.argument("deployment")
    @click.option("--stage", required=True, help="Stage the copy goes to")
    @click.option("--fence/--no-fence", default=True, show_default=True)
    @REASON
    @WAIT
    @OUTPUT
    @client_command
    def copy(deployment: str, stage: str, fence: bool, reason: str | None, wait: bool, output: str) -> int:
        """An exact copy of a live deployment (fenced by default)."""
        client = api()
        created = client.post(f"/deployments/{deployment}/copy", {"stage": stage, "fence": fence, "reason": reason})
        return show_deployment(client, created, output, wait)

    @cli.command()
    @click.argument("deployment")
    @REASON
    @WAIT
    @OUTPUT
    @client_command
    def swap(deployment: str, reason: str | None, wait: bool, output: str) -> int:
        """Put a fenced copy in place of the deployment it copies."""
        client = api()
        body = {"reason": reason} if reason else None
        return show_deployment(client, client.post(f"/deployments/{deployment}/swap", body), output, wait)

    @cli.command()
    @click.argument("configuration")
    @OUTPUT
    @client_command
    def history(configuration: str, output: str) -> int:
        """Every version of a configuration: who, when, why, what."""
        data = api().get(f"/configurations/{configuration}/history")
        if output == "json":
            emit_json(console(), data)
        else:
            table(console(), data["items"], ["version", "at", "actor", "reason", "summary"], "versions")
        return DONE

    @cli.command()
    @click.argument("configuration")
    @click.option("--from", "from_", type=click.IntRange(1), required=True)
    @click.option("--to", type=click.IntRange(1), required=True)
    @OUTPUT
    @client_command
    def diff(configuration: str, from_: int, to: int, output: str) -> int:
        """What changed between two versions, field by field."""
        data = api().get(f"/configurations/{configuration}/diff", **{"from": from_, "to": to})
        if output == "json":
            emit_json(console(), data)
        else:
            console().print(data["summary"], highlight=False)
        return DONE

    @cli.command()
    @click.argument("configuration")
    @click.option("--version", "version", type=click.IntRange(1), required=True)
    @REASON
    @OUTPUT
    @client_command
    def restore(configuration: str, version: int, reason: str | None, output: str) -> int:
        """Make an earlier version current again (a new version; history is kept)."""
        data = api().post(f"/configurations/{configuration}/restore", {"version": version, "reason": reason})
        if output == "json":
            emit_json(console(), data)
        else:
            click.echo(f"configuration {data['id']} is at version {data['version']} (restored from {version})")
        return DONE

    @cli.group()
    def grants() -> None:
        """Roles held on a service."""

    @grants.command("list")
    @click.option("--service", "-s", required=True)
    @OUTPUT
    @client_command
    def grants_list(service: str, output: str) -> int:
        client = api()
        data = client.get(f"/services/{service_id(client, service)}/grants")
        if output == "json":
            emit_json(console(), data)
        else:
            table(console(), data["items"], ["id", "role", "user", "group", "stage", "granted_by"], "grants")
        return DONE

    @grants.command("add")
    @click.option("--service", "-s", required=True)
    @click.option("--role", type=click.Choice(["viewer", "service-owner", "stage-operator"]), required=True)
    @click.option("--user", default=None)
    @click.option("--group", default=None, help="Group DN")
    @click.option("--stage", default=None)
    @REASON
    @OUTPUT
    @client_command
    def grants_add(
        service: str, role: str, user: str | None, group: str | None, stage: str | None, reason: str | None, output: str
    ) -> int:
        client = api()
        body = {"role": role, "user": user, "group": group, "stage": stage, "reason": reason}
        data = client.post(f"/services/{service_id(client, service)}/grants", body)
        emit_json(console(), data) if output == "json" else click.echo(f"granted {role}")
        return DONE

    @grants.command("revoke")
    @click.option("--service", "-s", required=True)
    @click.argument("grant_id")
    @client_command
    def grants_revoke(service: str, grant_id: str) -> int:
        client = api()
        client.call("DELETE", f"/services/{service_id(client, service)}/grants/{grant_id}")
        click.echo(f"revoked {grant_id}")
        return DONE

    @cli.group(name="export")
    def export_group() -> None:
        """Write a service to one signed file (for another instance)."""

    @export_group.command("service")
    @click.argument("service")
    @click.option("--output", "output_file", default=None, help="File to write (default: <name>.stagekeeper.json)")
    @click.option("--force", is_flag=True, help="Overwrite the file when it exists")
    @client_command
    def export_service(service: str, output_file: str | None, force: bool) -> int:
        """The service, its configurations with their history, grants and stage policies (no secrets)."""
        client = api()
        wanted = service_id(client, service)
        document = client.get(f"/services/{wanted}/export")
        target = Path(output_file) if output_file else Path(export_file_name(document, wanted))
        text = json.dumps(document, ensure_ascii=False)
        try:
            with target.open("w" if force else "x", encoding="utf-8") as file:
                file.write(text)
        except FileExistsError:
            raise ClientError(f"{target} exists: give --force to overwrite it, or --output", USAGE) from None
        chain = document["chain"]
        click.echo(f"wrote {target}: {chain['count']} events, chain head {chain['head']}")
        return DONE

    @cli.command(name="import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @REASON
    @OUTPUT
    @client_command
    def import_service(file: str, reason: str | None, output: str) -> int:
        """Load an exported service (administrators); refused if its chain does not verify or names collide."""
        try:
            document = json.loads(Path(file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ClientError(f"cannot read {file}: {error}", USAGE) from error
        client = api()
        with unreachable(client.base):
            response = check(client.http.post("/imports", json=document, params={"reason": reason} if reason else {}))
        data = response.json()
        if output == "json":
            emit_json(console(), data)
        else:
            click.echo(f"imported service {data['name']} ({data['id']})")
        return DONE

    @cli.group()
    def tokens() -> None:
        """Your API tokens."""

    @tokens.command("list")
    @OUTPUT
    @client_command
    def tokens_list(output: str) -> int:
        data = api().get("/tokens")
        if output == "json":
            emit_json(console(), data)
        else:
            table(console(), data["items"], ["id", "name", "user", "created_at", "expires_at", "revoked"], "tokens")
        return DONE

    @tokens.command("create")
    @click.argument("name")
    @click.option("--expires-in-days", default=90, type=click.IntRange(1, 365), show_default=True)
    @OUTPUT
    @client_command
    def tokens_create(name: str, expires_in_days: int, output: str) -> int:
        data = api().post("/tokens", {"name": name, "expires_in_days": expires_in_days})
        if output == "json":
            emit_json(console(), data)
        else:
            click.echo(f"token {data['id']} (shown once): {data['token']}")
        return DONE

    @tokens.command("revoke")
    @click.argument("token_id")
    @client_command
    def tokens_revoke(token_id: str) -> int:
        api().call("DELETE", f"/tokens/{token_id}")
        click.echo(f"revoked {token_id}")
        return DONE


def service_id(client: Api, service: str) -> str:
    """A service id, or the id of the one readable service with that name (case-insensitive)."""
    if len(service) == 36 and service.count("-") == 4:
        return service
    items = client.get("/services")["items"]
    found = [s for s in items if str(s["name"]).casefold() == service.casefold()]
    if not found:
        raise ClientError(f"no service named {service!r} among those you may read", REFUSED)
    return str(found[0]["id"])


def audit_query(api_factory: Callable[[], Api] = api) -> click.Command:
    @click.command("query")
    @click.option("--service", "-s", default=None)
    @click.option("--deployment", default=None)
    @click.option("--configuration", default=None)
    @click.option("--actor", default=None)
    @click.option("--type", "type_", default=None, help='e.g. "Deployment." or "Deployment.Moved"')
    @click.option("--from", "from_", default=None, help="ISO 8601, inclusive")
    @click.option("--to", default=None, help="ISO 8601, exclusive")
    @click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
    @OUTPUT
    @client_command
    def query(
        service: str | None,
        deployment: str | None,
        configuration: str | None,
        actor: str | None,
        type_: str | None,
        from_: str | None,
        to: str | None,
        limit: int,
        output: str,
    ) -> int:
        """Audit log entries, newest first (from the server)."""
        client = api_factory()
        params = {
            "service": service_id(client, service) if service else None,
            "deployment": deployment,
            "configuration": configuration,
            "actor": actor,
            "type": type_,
            "from": from_,
            "to": to,
            "limit": limit,
        }
        data = client.get("/audit", **params)
        if output == "json":
            emit_json(console(), data)
        else:
            columns = ["position", "at", "actor", "event_type", "reason", "summary"]
            table(console(), data["items"], columns, "audit entries")
        return DONE

    return query


def remote_export(service: str | None, fmt: str, output_file: str | None) -> int:
    """`audit export --remote`: stream the server's export to a file or standard output."""
    try:
        client = api()
        params = {"format": fmt}
        if service:
            params["service"] = service_id(client, service)
        target = open(output_file, "wb") if output_file else sys.stdout.buffer  # noqa: SIM115
        try:
            with unreachable(client.base), client.http.stream("GET", "/audit/export", params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    check(response)
                for chunk in response.iter_bytes():
                    target.write(chunk)
        finally:
            if output_file:
                target.close()
        return DONE
    except ClientError as error:
        click.echo(f"stagekeeper: {error.message}", err=True)
        return error.exit_code


def export_file_name(document: object, fallback: str) -> str:
    """The default export file: `<name>.stagekeeper.json` in the current directory, whatever the
    server answered. The name is cut to a base name without path separators, control or bidi
    characters or leading dots; when nothing usable is left, the service id asked for is used."""
    service = document.get("service") if isinstance(document, dict) else None
    raw = service.get("name") if isinstance(service, dict) else None
    name = "".join(
        "_" if c in "/\\" or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in str(raw or "")
    )
    name = name.strip().lstrip(".").strip()[:200]
    return f"{name or fallback}.stagekeeper.json"
