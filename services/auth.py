"""Authenticate bearer tokens: the existing backend's HS256 tokens and identity providers' JWKS.

Claims (docs/design/token-claims.md): ``sub`` is the user id; ``privilege`` is 2/3 or "admin"/"main"
(1/"owner" may not use the orchestrator); the organization is ``organizationGuid``, or
the old backend's ``organizationId``: AES-256-CBC "<ivHex>:<cipherHex>" under
ORG_ENCRYPTION_KEY.

Claims are parsed strictly, because the token is input too: ``exp`` is a number of
seconds no later than 9999-12-31, ``sub`` is text, the organization is exactly a GUID
(no trailing newline), and an ``organizationId`` that does not decrypt to one gets the
same answer whatever went wrong (bad hex, IV, padding or text), so that the answers do
not tell a forger which part of a guess was right.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeGuard

import jwt
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from services.errors import AuthenticationError, PermissionDeniedError
from services.models import Principal, Privilege

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_PRIVILEGES: dict[object, Privilege] = {
    1: Privilege.OWNER,
    2: Privilege.ADMIN,
    3: Privilege.MAIN,
    "owner": Privilege.OWNER,
    "admin": Privilege.ADMIN,
    "main": Privilege.MAIN,
}
ALLOWED_PRIVILEGES = frozenset({Privilege.ADMIN, Privilege.MAIN})
_JWKS_LIFESPAN = 300  # seconds the identity provider's key set is cached
# datetime's last second, 9999-12-31T23:59:59Z; a millisecond exp lies beyond it.
_LAST_EXP = 253_402_300_799
DEFAULT_LEEWAY_SECONDS = 30
_UNDECRYPTABLE = "The token's organizationId cannot be decrypted."


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """How tokens are checked; built once from the settings."""

    algorithms: tuple[str, ...]
    secret: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    org_encryption_key: str | None = None
    # Clock skew tolerated on exp (and iat/nbf), everywhere a token is checked.
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS


def encrypt_organization_id(guid: str, key: str, iv: bytes) -> str:
    """Encrypt an organization GUID the way the existing backend does (for tests and tools)."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(guid.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv)).encryptor()
    return f"{iv.hex()}:{(encryptor.update(data) + encryptor.finalize()).hex()}"


def is_guid(value: object) -> TypeGuard[str]:
    """Whether *value* is exactly a GUID, 8-4-4-4-12 hex digits (no newline, no braces)."""
    return isinstance(value, str) and _GUID.fullmatch(value) is not None


@lru_cache(maxsize=4096)
def _decrypt_organization_id(value: str, key: str) -> str | None:
    """Return the GUID that *value* encrypts, or None however it fails to."""
    iv_hex, colon, cipher_hex = value.partition(":")
    if not colon or not re.fullmatch(r"[0-9a-fA-F]{32}", iv_hex):
        return None
    if not re.fullmatch(r"([0-9a-fA-F]{32})+", cipher_hex):
        return None
    decryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(bytes.fromhex(iv_hex))).decryptor()
    padded = decryptor.update(bytes.fromhex(cipher_hex)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        text = (unpadder.update(padded) + unpadder.finalize()).decode("ascii")
    except ValueError:  # bad padding, or bytes that are not text
        return None
    return text if is_guid(text) else None


def _parse_privilege(claim: object) -> Privilege | None:
    if isinstance(claim, str):
        return _PRIVILEGES.get(claim.strip().lower())
    # bool is an int subclass (True must not read as 1); lists and objects are not keys.
    if isinstance(claim, int) and not isinstance(claim, bool):
        return _PRIVILEGES.get(claim)
    return None


def _expiry(claims: dict[str, Any]) -> int:
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not 0 < exp <= _LAST_EXP:
        raise AuthenticationError(
            "Invalid token: 'exp' must be a time in seconds since 1970, before year 10000."
        )
    return int(exp)


class TokenVerifier:
    """Turn an Authorization header into a Principal, or raise an AuthError.

    A token that verified is remembered (at most ``cache_size`` of them) until its ``exp``
    plus the leeway, when pyjwt would start refusing it; with JWKS, also no longer than the
    key set is cached. The principal depends on the signed claims only, so the answer is
    the one a fresh check would give. Failures are never remembered.
    """

    def __init__(
        self,
        config: AuthConfig,
        *,
        cache_size: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._clock = clock  # when remembered tokens stop counting (seconds since the epoch)
        self._jwks = (
            jwt.PyJWKClient(config.jwks_url, cache_jwk_set=True, lifespan=_JWKS_LIFESPAN)
            if config.jwks_url
            else None
        )
        self._cache_size = cache_size
        self._verified: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        """Return the caller for a ``Bearer <jwt>`` header value."""
        token = self._bearer(authorization)
        known = self._verified.get(token)
        if known is not None:
            if self._clock() < known[0]:
                return known[1]
            del self._verified[token]
        claims = await self._decode(token)
        principal = self._principal(claims)
        self._remember(token, principal)
        return principal

    def _remember(self, token: str, principal: Principal) -> None:
        # pyjwt refuses a token once exp <= now - leeway: the principal's token_expires_at.
        until = principal.token_expires_at.timestamp()
        if self._jwks is not None:
            until = min(until, self._clock() + _JWKS_LIFESPAN)  # a key may leave the set
        if len(self._verified) >= self._cache_size:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (until, principal)

    @staticmethod
    def _bearer(authorization: str | None) -> str:
        if not authorization:
            raise AuthenticationError(
                "Authentication required: send 'Authorization: Bearer <token>'."
            )
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Malformed Authorization header: expected 'Bearer <token>'.")
        return token.strip()

    async def _decode(self, token: str) -> dict[str, Any]:
        config = self._config
        try:
            if self._jwks is not None:
                # PyJWKClient fetches with urllib (blocking); keep it off the event loop.
                key: Any = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
            else:
                key = config.secret
            return jwt.decode(
                token,
                key,
                algorithms=list(config.algorithms),
                issuer=config.issuer,
                audience=config.audience,
                leeway=config.leeway_seconds,
                options={"require": ["exp", "sub"], "verify_aud": config.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("Token expired: sign in again.") from exc
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthenticationError("Cannot reach the identity provider's keys (JWKS).") from exc
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
            raise AuthenticationError(f"Invalid token: {exc}.") from exc

    def _principal(self, claims: dict[str, Any]) -> Principal:
        expires = _expiry(claims)
        user_id = claims.get("sub")
        if not isinstance(user_id, str) or not user_id.isprintable() or not user_id.strip():
            # isprintable() is False for control characters and lone surrogates alike.
            raise AuthenticationError("Invalid token: 'sub' must name the user.")
        privilege = _parse_privilege(claims.get("privilege"))
        if privilege not in ALLOWED_PRIVILEGES:
            raise PermissionDeniedError(
                "Only Admin and Main users may create products; your privilege does not allow it."
            )
        return Principal(
            user_id=user_id,
            privilege=privilege,
            organization_guid=self._organization(claims),
            # When pyjwt would start refusing the token: every later check uses this.
            token_expires_at=datetime.fromtimestamp(
                min(expires + self._config.leeway_seconds, _LAST_EXP), tz=UTC
            ),
        )

    def _organization(self, claims: dict[str, Any]) -> str:
        guid = claims.get("organizationGuid")
        encrypted = claims.get("organizationId")
        if guid is None and encrypted is not None:
            key = self._config.org_encryption_key
            if not key:
                raise AuthenticationError(
                    "The token's organizationId is encrypted but ORG_ENCRYPTION_KEY "
                    "is not configured."
                )
            guid = _decrypt_organization_id(encrypted, key) if isinstance(encrypted, str) else None
            if guid is None:
                raise AuthenticationError(_UNDECRYPTABLE)
        if not is_guid(guid):
            raise PermissionDeniedError(
                "The token names no organization: the orchestrator needs one."
            )
        return guid.lower()


def mint_token(
    *,
    secret: str,
    subject: str,
    privilege: str | int,
    organization_guid: str,
    ttl_seconds: int = 3600,
    algorithm: str = "HS256",
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """Sign a token with the claims the orchestrator reads (development and tests)."""
    now = int(datetime.now(tz=UTC).timestamp())
    claims: dict[str, Any] = {
        "sub": subject,
        "privilege": privilege,
        "organizationGuid": organization_guid,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=algorithm)
