"""The `[rate_limits]` section of the settings: per API key and per scope, refusing unknown keys
and bad values when the configuration loads."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from pool.vocabulary import ApiScope


class WindowLimits(BaseModel):
    """Requests one API key may make in each window; unset fields take `[rate_limits]`'s."""

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    per_second: int | None = Field(default=None, ge=1)
    per_minute: int | None = Field(default=None, ge=1)


class RateLimitSettings(BaseModel):
    """Per API key and per scope, enforced by each API process on its own
    (`[rate_limits]` in TOML, `ADDRPOOL_RATE_LIMITS__*`; docs/configuration.md).

    The defaults are backstops above what one process serves (docs/performance.md): a runaway
    client meets them, a checkout never does. `scopes` sets one scope's own limits.
    """

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    enabled: bool = True
    per_second: int = Field(default=2000, ge=1)
    per_minute: int = Field(default=90_000, ge=1)
    scopes: dict[ApiScope, WindowLimits] = Field(default_factory=dict)

    @field_validator("scopes")
    @classmethod
    def _route_scopes_only(
        cls, scopes: dict[ApiScope, WindowLimits]
    ) -> dict[ApiScope, WindowLimits]:
        if "admin" in scopes:
            # No route requires `admin`: an admin key counts against the scope of each route.
            raise ValueError("admin is no route's scope; limit the scopes its routes require")
        return scopes

    def for_scope(self, scope: str) -> tuple[int, int]:
        """(per second, per minute) for a route that requires `scope`."""
        own = next((limits for name, limits in self.scopes.items() if name == scope), None)
        if own is None:
            return self.per_second, self.per_minute
        return own.per_second or self.per_second, own.per_minute or self.per_minute
