"""Identity settings, read from the environment (prefix ``NBP_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from nbp_common.settings import read_secret_file

# Asymmetric signatures only: a service holds no signing secret, so nothing a service knows can forge a
# token. "none" and the HMAC family (HS256/384/512, whose "key" would be whatever the verifier is given)
# are refused by configuration, not only by default.
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)


class AuthSettings(BaseSettings):
    """How the services check who is calling.

    ``NBP_AUTH=keycloak`` (production): every request carries a Keycloak access token, verified locally
    against the realm's keys. ``NBP_AUTH=none`` (local development only): nothing is checked, every caller
    is the development principal, and the process refuses to listen anywhere but loopback
    (:func:`nbp_common.auth.assert_loopback_only`).
    """

    model_config = SettingsConfigDict(env_prefix="NBP_", extra="ignore")

    auth: Literal["keycloak", "none"] = "none"

    # The realm's issuer exactly as Keycloak writes it into ``iss``, e.g.
    # http://127.0.0.1:8180/realms/notebook-platform (scripts/keycloak.py env prints it).
    oidc_issuer: str | None = None
    # Where to fetch the realm's public keys. Default: Keycloak's <issuer>/protocol/openid-connect/certs.
    # Set it when the services reach Keycloak by another address than the public one in ``iss``
    # (in a cluster: the in-cluster service URL).
    oidc_jwks_url: str | None = None
    oidc_audience: str = "nbp-api"
    oidc_algorithms: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["RS256", "ES256"])
    # Clock skew tolerated on exp / nbf / iat, in seconds.
    oidc_leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    # An unknown key id triggers a fetch of the JWKS at most this often (a flood of made-up key ids
    # costs Keycloak nothing).
    oidc_jwks_min_refresh_seconds: float = Field(default=10.0, ge=0)
    # Keys are fetched again after this long even without an unknown key id, so that a key removed
    # from the realm stops being accepted.
    oidc_jwks_max_age_seconds: float = Field(default=3600.0, gt=0)
    oidc_http_timeout_seconds: float = Field(default=5.0, gt=0)
    # Tokens already verified are remembered (by hash) until they expire or the key set changes, so a
    # client's next request with the same token costs a lookup, not a signature check. 0 turns it off.
    oidc_verified_cache_size: int = Field(default=4096, ge=0)

    # Service-to-service calls (client credentials), e.g. the executor calling the registry and history.
    # Token endpoint default: Keycloak's <issuer>/protocol/openid-connect/token.
    oidc_token_url: str | None = None
    service_client_id: str | None = None
    service_client_secret: SecretStr | None = None
    # The secret from a file instead (NBP_SERVICE_CLIENT_SECRET_FILE), kept out of the environment.
    service_client_secret_file: Path | None = None

    @field_validator("oidc_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        refused = [alg for alg in value if alg not in ALLOWED_ALGORITHMS]
        if refused:
            raise ValueError(
                f"algorithms {refused} are not allowed; "
                f"use asymmetric ones ({', '.join(sorted(ALLOWED_ALGORITHMS))})"
            )
        if not value:
            raise ValueError("at least one algorithm is needed, e.g. RS256")
        return value

    @field_validator("oidc_issuer", "oidc_jwks_url", "oidc_token_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _secret_from_file(self) -> AuthSettings:
        if self.service_client_secret_file is not None and self.service_client_secret is None:
            self.service_client_secret = SecretStr(
                read_secret_file(self.service_client_secret_file, "NBP_SERVICE_CLIENT_SECRET_FILE")
            )
        return self

    @model_validator(mode="after")
    def _issuer_when_checking(self) -> AuthSettings:
        if self.auth == "keycloak" and not self.oidc_issuer:
            raise ValueError(
                "NBP_AUTH=keycloak needs NBP_OIDC_ISSUER, "
                "e.g. http://127.0.0.1:8180/realms/notebook-platform "
                "(`python3 scripts/keycloak.py env` prints the local one)"
            )
        return self

    @property
    def jwks_url(self) -> str:
        if self.oidc_jwks_url:
            return self.oidc_jwks_url
        if not self.oidc_issuer:
            raise ValueError("NBP_OIDC_ISSUER (or NBP_OIDC_JWKS_URL) is not set")
        return f"{self.oidc_issuer}/protocol/openid-connect/certs"

    @property
    def token_url(self) -> str:
        if self.oidc_token_url:
            return self.oidc_token_url
        if not self.oidc_issuer:
            raise ValueError("NBP_OIDC_TOKEN_URL (or NBP_OIDC_ISSUER) is not set")
        return f"{self.oidc_issuer}/protocol/openid-connect/token"
