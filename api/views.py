"""Aggregates -> JSON documents."""

from __future__ import annotations

from typing import Any

from domain.accounts import ApiToken
from domain.configuration import Configuration
from domain.deployment import Deployment
from domain.service import Service


def service_view(service: Service) -> dict[str, Any]:
    return {
        "id": str(service.id),
        "version": service.definition_version,
        "name": service.name,
        "description": service.description,
        "retired": service.retired,
        "stages": [
            {**stage, "live_deployments": len(service.live_deployments(stage["name"]))} for stage in service.stages
        ],
        "created_at": service.created_on.isoformat(),
        "updated_at": service.modified_on.isoformat(),
    }


def configuration_view(configuration: Configuration) -> dict[str, Any]:
    return {
        "id": str(configuration.id),
        "version": configuration.version,
        "service_id": str(configuration.service_id),
        "name": configuration.name,
        "description": configuration.description,
        "retired": configuration.retired,
        "networks": configuration.networks,
        "machines": configuration.machines,
        "created_at": configuration.created_on.isoformat(),
        "updated_at": configuration.modified_on.isoformat(),
    }


def deployment_view(deployment: Deployment) -> dict[str, Any]:
    """The aggregate's own view (what lists and the board show too), plus when it was created."""
    return {**deployment.view(), "created_at": deployment.created_on.isoformat()}


def token_view(token: ApiToken) -> dict[str, Any]:
    return {
        "id": str(token.id),
        "name": token.name,
        "user": token.user,
        "hint": token.hint,
        "expires_at": token.expires_at.isoformat(),
        "revoked": token.revoked,
        "created_at": token.created_on.isoformat(),
    }
