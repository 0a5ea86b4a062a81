"""Where `stagekeeper login` keeps the server's address and the token: one JSON file, mode 0600,
under the user's configuration directory (`$STAGEKEEPER_CONFIG_DIR`, else
`$XDG_CONFIG_HOME/stagekeeper`, else `~/.config/stagekeeper`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "credentials.json"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str
    user: str
    token_id: str | None = None


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("STAGEKEEPER_CONFIG_DIR"):
        return Path(env["STAGEKEEPER_CONFIG_DIR"])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "stagekeeper"


def path(env: Mapping[str, str] | None = None) -> Path:
    return config_dir(env) / FILE_NAME


def save(credentials: Credentials, env: Mapping[str, str] | None = None) -> Path:
    """Write the file atomically with mode 0600 (created so: never readable by others, not even briefly)."""
    target = path(env)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = target.with_name(f".{FILE_NAME}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(credentials), out)
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def load(env: Mapping[str, str] | None = None) -> Credentials | None:
    env = os.environ if env is None else env
    token = env.get("STAGEKEEPER_TOKEN")
    url = env.get("STAGEKEEPER_URL")
    if token and url:
        return Credentials(url=url, token=token, user="(token from environment)")
    try:
        data = json.loads(path(env).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path(env)}: {error}") from error
    return Credentials(
        url=str(data["url"]), token=str(data["token"]), user=str(data.get("user", "")), token_id=data.get("token_id")
    )


def forget(env: Mapping[str, str] | None = None) -> bool:
    try:
        path(env).unlink()
    except FileNotFoundError:
        return False
    return True
