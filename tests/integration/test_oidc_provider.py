"""adapters/oidc.py against a real OpenID Connect provider (node oidc-provider): a real ID token
verifies only with its own nonce, audience, signature and within its lifetime."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from adapters.oidc import OidcProvider, Pending, ProviderError, TokenError
from scripts.oidc_harness import OidcProviderProcess, log_in, start

CALLBACK = "http://stagekeeper.test/ui/oidc/callback"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProviderProcess]:
    process = start(CALLBACK)
    yield process
    process.stop()


def id_token_for(provider: OidcProviderProcess, login: str) -> tuple[OidcProvider, Pending, str]:
    client = OidcProvider(provider.issuer, provider.client_id, provider.client_secret)
    pending = Pending.new()
    callback = log_in(client.authorization_url(pending, CALLBACK, "openid profile groups"), login, CALLBACK)
    query = parse_qs(urlsplit(callback).query)
    assert query["state"] == [pending.state]
    return client, pending, client.exchange(query["code"][0], pending, CALLBACK)


def test_a_real_id_token_verifies_with_its_nonce_and_carries_the_groups(provider: OidcProviderProcess) -> None:
    client, pending, id_token = id_token_for(provider, "alice")
    claims = client.verify(id_token, pending.nonce, int(time.time()))
    assert claims["iss"] == provider.issuer
    assert claims["sub"] == "alice"
    assert claims["groups"] == ["stagekeeper-users", "payroll ops"]


def test_a_wrong_nonce_a_wrong_audience_or_an_expired_token_is_refused(provider: OidcProviderProcess) -> None:
    client, pending, id_token = id_token_for(provider, "alice")
    with pytest.raises(TokenError, match="nonce"):
        client.verify(id_token, Pending.new().nonce, int(time.time()))
    other = OidcProvider(provider.issuer, "another-client", provider.client_secret)
    with pytest.raises(TokenError, match="aud"):
        other.verify(id_token, pending.nonce, int(time.time()))
    with pytest.raises(TokenError, match="exp"):
        client.verify(id_token, pending.nonce, int(time.time()) + 2 * 86_400)


def test_a_token_with_changed_claims_or_no_signature_is_refused(provider: OidcProviderProcess) -> None:
    client, pending, id_token = id_token_for(provider, "bob")
    header, payload, signature = id_token.split(".")
    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(
        b"contractors", b"stagekeeper-admins"
    )
    forged = base64.urlsafe_b64encode(claims).decode().rstrip("=")
    with pytest.raises(TokenError):
        client.verify(f"{header}.{forged}.{signature}", pending.nonce, int(time.time()))
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
    with pytest.raises(TokenError):
        client.verify(f"{unsigned}.{payload}.", pending.nonce, int(time.time()))


def test_a_used_code_is_refused_by_the_provider(provider: OidcProviderProcess) -> None:
    client = OidcProvider(provider.issuer, provider.client_id, provider.client_secret)
    pending = Pending.new()
    callback = log_in(client.authorization_url(pending, CALLBACK, "openid"), "alice", CALLBACK)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    with pytest.raises(TokenError, match="refused the authorization code"):
        client.exchange(code, Pending.new(), CALLBACK)  # the wrong PKCE verifier


def test_an_unreachable_or_impostor_issuer_is_a_provider_error(provider: OidcProviderProcess) -> None:
    with pytest.raises(ProviderError, match="did not answer"):
        OidcProvider("http://127.0.0.1:9", "x", "y", timeout=2).metadata()
    with pytest.raises(ProviderError, match="names issuer"):
        # The same provider under another name: its discovery document names its own issuer.
        OidcProvider(provider.issuer.replace("127.0.0.1", "localhost"), "x", "y").metadata()
