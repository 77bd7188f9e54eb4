"""Base of every scanner service: it registers itself in `scanners` at start and stamps the
version it got (code version + parameter hash) on every row it writes (provenance)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from quantcore.service import Service, ServiceContext
from quantcore.store.scanners import register


class RegisteredScanner(Service):
    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        self.scanner_version = ""

    @abstractmethod
    def registry_params(self) -> dict[str, Any]:
        """Every parameter that changes what this scanner decides."""

    async def register(self) -> None:
        async with self.ctx.pool.connection() as conn:
            self.scanner_version = await register(
                conn, self.name, self.version, self.registry_params(), self.description
            )
        self.status_info["scanner_version"] = self.scanner_version
