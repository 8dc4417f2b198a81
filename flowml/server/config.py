"""What a server is started with (the ``flowml server`` options)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServerConfig:
    backend_store_uri: str
    artifacts_destination: str  # the folder the artifact proxy serves
    host: str = "127.0.0.1"
    port: int = 5000
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)  # Host headers accepted; empty: derived
    max_body_bytes: int = 64 * 1024 * 1024  # JSON bodies; artifact uploads stream and are not limited here
    auth: bool = False

    def host_allow_list(self) -> set[str]:
        """Hosts a request may name (a defence against DNS rebinding): the configured ones, or,
        for a server bound to loopback, the loopback names. A server bound to all interfaces
        without ``--allowed-hosts`` accepts any name (``flowml server`` warns about it)."""
        if self.allowed_hosts:
            return set(self.allowed_hosts)
        if self.host in ("0.0.0.0", "::"):
            return {"*"}
        return {"127.0.0.1", "localhost", "::1", "[::1]", self.host}

    def to_json(self) -> dict:
        return {**self.__dict__, "allowed_hosts": list(self.allowed_hosts)}

    @classmethod
    def from_json(cls, data: dict) -> "ServerConfig":
        return cls(**{**data, "allowed_hosts": tuple(data.get("allowed_hosts", ()))})
