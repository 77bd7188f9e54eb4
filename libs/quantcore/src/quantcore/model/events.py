"""Bus events: a versioned envelope around a typed payload.

Each payload model names its `TYPE` and `VERSION`; `EVENT_TYPES` maps type → model so a
consumer validates what it reads. Events are immutable once built (frozen models). Adding a
field with a default is compatible; anything else bumps VERSION.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class Event(BaseModel):
    """Base of every bus payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


class Envelope(BaseModel):
    """What travels on a stream: id, type, schema version, time, source, correlation id, payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int = Field(ge=1)
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: str
    correlation_id: str
    payload: dict[str, Any]


EVENT_TYPES: dict[str, type[Event]] = {}


def register(model: type[Event]) -> type[Event]:
    if model.TYPE in EVENT_TYPES and EVENT_TYPES[model.TYPE] is not model:
        raise ValueError(f"event type {model.TYPE!r} registered twice")
    EVENT_TYPES[model.TYPE] = model
    return model


LogLevel = Literal["debug", "info", "warning", "error", "critical"]


@register
class AgentLogRecorded(Event):
    """A decision or incident a service wants kept in `agent_logs` (and visible in Grafana)."""

    TYPE: ClassVar[str] = "agent_log.recorded"
    agent: str = Field(min_length=1, max_length=100)
    level: LogLevel = "info"
    event_type: str = Field(min_length=1, max_length=100)
    message: str = Field(min_length=1, max_length=4000)
    vertical: Literal["perps", "poly", "system"] = "system"
    symbol: str | None = Field(None, max_length=40)
    detail: dict[str, Any] = Field(default_factory=dict)
