"""The server's bearer tokens in the SQL store. A token reads ``flowml_<id>_<secret>``; only
SHA-256 of the secret is stored (the secret is 32 random bytes, so a slow password hash
would add nothing), and checking compares in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from flowml.errors import TrackingError
from flowml.tracking.entities import now_ms
from flowml.tracking.sql import tables as t
from flowml.tracking.sql.database import writing

ROLES = ("read", "write", "admin")  # each includes the ones before it
PREFIX = "flowml_"


@dataclass(frozen=True)
class AccessToken:
    token_id: str
    name: str
    role: str
    created_at: int
    revoked_at: int | None = None


class TokenStore:
    """Needs ``self.engine`` (from :class:`SqlStore`)."""

    def create_token(self, name: str, role: str) -> tuple[AccessToken, str]:
        """A new token; returns it and its full text, which is shown once and never stored."""
        if role not in ROLES:
            raise TrackingError(f"unknown role '{role}'; expected one of {', '.join(ROLES)}")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        created = now_ms()
        with writing(self.engine) as conn:
            conn.execute(insert(t.access_tokens).values(token_id=token_id, name=name, role=role,
                                                        secret_hash=_hash(secret), created_at=created))
        return AccessToken(token_id, name, role, created), f"{PREFIX}{token_id}_{secret}"

    def list_tokens(self) -> list[AccessToken]:
        c = t.access_tokens.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.token_id, c.name, c.role, c.created_at, c.revoked_at).order_by(c.created_at))
            return [AccessToken(*row) for row in rows]

    def revoke_token(self, token_id: str) -> None:
        with writing(self.engine) as conn:
            done = conn.execute(update(t.access_tokens).where(t.access_tokens.c.token_id == token_id,
                                                              t.access_tokens.c.revoked_at.is_(None))
                                .values(revoked_at=now_ms())).rowcount
        if not done:
            raise TrackingError(f"no active token '{token_id}'", "RESOURCE_DOES_NOT_EXIST")

    def token_role(self, text: str) -> str | None:
        """The role of a valid, unrevoked token; None for anything else."""
        if not text.startswith(PREFIX) or text.count("_") < 2:
            return None
        token_id, _, secret = text[len(PREFIX):].partition("_")
        c = t.access_tokens.c
        with self.engine.connect() as conn:
            row = conn.execute(select(c.secret_hash, c.role).where(c.token_id == token_id,
                                                                   c.revoked_at.is_(None))).first()
        if row is None or not hmac.compare_digest(row[0], _hash(secret)):
            return None
        return row[1]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
