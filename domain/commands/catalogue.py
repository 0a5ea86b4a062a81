"""Template catalogue and account commands."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from domain.accounts import ApiToken, LocalAccount
from domain.application import Outcome, StagekeeperApplication
from domain.credentials import hash_password, new_token, token_digest, verify_password
from domain.errors import NotFoundError, ValidationError
from domain.text import check_reason, check_text
from domain.values import MAX_TEMPLATE_NAME, normalise_key

MAX_TOKEN_DAYS = 366


class CatalogueCommands(StagekeeperApplication):
    def import_templates(
        self, names: object, import_all: object, actor: str, reason: str | None = None
    ) -> Outcome[list[dict[str, Any]]]:
        """Import vCenter templates into the shared catalogue (by name, or all of them)."""
        reason = check_reason(reason)
        if import_all is not None and not isinstance(import_all, bool):
            raise ValidationError("all must be true or false", field="all")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
            raise ValidationError("names must be a list of template names", field="names")
        for i, name in enumerate(names or []):
            check_text(name, f"names[{i}]", max_length=MAX_TEMPLATE_NAME, required=True)
        if bool(import_all) == bool(names):
            raise ValidationError('give either "names": [...] or "all": true', field="names")
        available = {normalise_key(t.name): t for t in self.vcenter.list_templates()}
        if import_all:
            chosen = list(available.values())
        else:
            assert isinstance(names, list)
            missing = [n for n in names if normalise_key(n) not in available]
            if missing:
                raise ValidationError(
                    f"no template named {', '.join(repr(n) for n in missing)} in vCenter",
                    field="names",
                )
            chosen = [available[normalise_key(n)] for n in names]
        records = [{**asdict(t), "disks_gib": list(t.disks_gib)} for t in chosen]

        def attempt() -> Outcome[list[dict[str, Any]]]:
            catalogue = self.catalogue()
            catalogue.import_templates(records, actor, reason)
            return Outcome(records, self.commit(catalogue))

        return self.retrying(attempt)

    # -- accounts ------------------------------------------------------------------------------
    def ensure_local_account(self, username: str, password: str | None) -> bool:
        """Create the local account, or reset its password when one is given. True if created."""
        account = self.local_account(username)
        if account is None:
            if password is None:
                raise ValidationError("a password is needed to create a local account", field="password")
            self.commit(LocalAccount(username=username, password_hash=hash_password(password), actor="stagekeeper"))
            return True
        if password is not None and not verify_password(password, account.password_hash):
            account.change_password(hash_password(password), actor="stagekeeper")
            self.commit(account)
        return False

    def issue_token(
        self, user: str, name: object, days: object, actor: str, groups: frozenset[str] = frozenset()
    ) -> tuple[str, ApiToken, int]:
        """Create an API token for `user`; the clear token is returned once and never stored."""
        name = check_text(name, "name", max_length=100, required=True)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TOKEN_DAYS:
            raise ValidationError(f"expires_in_days must be from 1 to {MAX_TOKEN_DAYS}", field="expires_in_days")
        token = new_token()
        expires: datetime = self.clock.now() + timedelta(days=days)
        aggregate = ApiToken(
            digest=token_digest(token), user=user, name=name, expires_at=expires, groups=sorted(groups), actor=actor
        )
        return token, aggregate, self.commit(aggregate)

    def revoke_token(self, token_id: UUID, actor: str, is_admin: bool, reason: str | None = None) -> Outcome[ApiToken]:
        """Revoke a token (its owner or an admin)."""
        reason = check_reason(reason)

        def attempt() -> Outcome[ApiToken]:
            token = self.load(ApiToken, token_id, "token")
            if token.user != actor and not is_admin:
                raise NotFoundError(f"no token with id {token_id}")
            token.revoke(actor, reason)
            return Outcome(token, self.commit(token))

        return self.retrying(attempt)
