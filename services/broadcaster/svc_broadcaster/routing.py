"""Routing: which channels carry a message, by kind and by conviction (the signal's score)."""

from __future__ import annotations

from dataclasses import dataclass

from quantcore.config import Settings
from svc_broadcaster.messages import KINDS, Channel, Message
from svc_broadcaster.outbox import NewItem


@dataclass(frozen=True)
class Route:
    channel: Channel
    kinds: frozenset[str]
    min_score: float


def parse_kinds(text: str, setting: str) -> frozenset[str]:
    kinds = frozenset(k.strip() for k in text.split(",") if k.strip())
    unknown = kinds - set(KINDS)
    if unknown:
        raise ValueError(
            f"{setting}: unknown event kind(s) {sorted(unknown)}; known: {list(KINDS)}"
        )
    return kinds


def routes(settings: Settings, channels: list[Channel]) -> dict[Channel, Route]:
    out: dict[Channel, Route] = {}
    for ch in channels:
        kinds = parse_kinds(
            getattr(settings, f"broadcast_{ch}_events"), f"BROADCAST_{ch.upper()}_EVENTS"
        )
        out[ch] = Route(ch, kinds, float(getattr(settings, f"broadcast_{ch}_min_score")))
    return out


def route(message: Message, table: dict[Channel, Route]) -> list[NewItem]:
    """One item per channel that carries this kind: pending, or skipped (recorded) when its
    conviction is below the channel's minimum. The daily digest has no score and always goes."""
    items: list[NewItem] = []
    for ch, r in table.items():
        if message.kind not in r.kinds:
            continue
        if message.kind == "daily" or r.min_score <= 0:
            items.append(NewItem(ch, message))
        elif message.score is None:
            items.append(NewItem(ch, message, "skipped",
                                 f"no score (manual trade); {ch} needs at least {r.min_score:g}"))  # fmt: skip
        elif message.score < r.min_score:
            items.append(NewItem(ch, message, "skipped",
                                 f"score {message.score:.1f} below {ch}'s minimum {r.min_score:g}"))  # fmt: skip
        else:
            items.append(NewItem(ch, message))
    return items
