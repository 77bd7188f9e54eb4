"""Polymarket payloads → quantcore.model.poly. Pure functions, no I/O.

Lists are parsed item by item: a bad item becomes a BadPayload with a reason (the caller
dead-letters it), the good ones get through. A reply whose *shape* is wrong (not a list, not
an envelope) raises BadPayload for the whole reply. Both Data API generations are read: v1
(camelCase rows, bare arrays) and v2 (snake_case rows in `{"data", "pagination"}`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar, cast

from pydantic import ValidationError

from quantcore.adapters.numbers import NUMBER, number
from quantcore.adapters.polymarket.schemas import CLOB_END_CURSOR
from quantcore.errors import BadPayload
from quantcore.model.poly import (
    Activity,
    BookLevel,
    Holder,
    LeaderboardEntry,
    PolyBook,
    PolyEvent,
    PolyMarket,
    PolyOutcome,
    PolyPosition,
    PolySource,
    PolyTag,
    PolyTrade,
    PositionStatus,
    PricePoint,
)

T = TypeVar("T")
SNIPPET = 500


@dataclass
class Page(Generic[T]):
    """One reply: the good items, the rejected ones, and the cursor of the next page (None =
    no more pages)."""

    items: list[T] = field(default_factory=list)
    bad: list[BadPayload] = field(default_factory=list)
    next_cursor: str | None = None


def snippet(raw: Any) -> str:
    if isinstance(raw, str):
        return raw[:SNIPPET]
    try:
        return json.dumps(raw, separators=(",", ":"), default=str)[:SNIPPET]
    except (TypeError, ValueError):
        return repr(raw)[:SNIPPET]


def pick(raw: Mapping[str, Any], *names: str) -> Any:
    """The first present, non-null field among `names` (v1 camelCase and v2 snake_case)."""
    for name in names:
        value = raw.get(name)
        if value is not None:
            return value
    return None


def optional_number(value: Any, what: str) -> float | None:
    if value is None or value == "":
        return None
    return number(value, what)


def required(raw: Mapping[str, Any], what: str, *names: str) -> Any:
    value = pick(raw, *names)
    if value is None or value == "":
        raise ValueError(f"{what} is missing")
    return value


def json_list(value: Any, what: str) -> list[Any]:
    """Gamma v1 sends `outcomes`, `outcomePrices`, `clobTokenIds` as JSON-encoded strings;
    some copies (and v2 `positionIds`) are real arrays. Either way: a list."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"{what} is not a JSON list: {value[:60]!r}") from exc
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list: {str(value)[:60]!r}")
    return value


def timestamp(value: Any, what: str) -> datetime:
    """Unix seconds or milliseconds (number or numeric string), or an ISO-8601 string."""
    if isinstance(value, str) and not NUMBER.match(value.strip()):
        text = value.strip().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{what} is not a time: {value[:40]!r}") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    seconds = number(value, what)
    if seconds > 1e11:  # milliseconds
        seconds /= 1000.0
    if not 1e9 <= seconds <= 1e10:
        raise ValueError(f"{what} is out of range: {value!r}")
    return datetime.fromtimestamp(seconds, UTC)


def optional_time(value: Any, what: str) -> datetime | None:
    return None if value is None or value == "" else timestamp(value, what)


def wallet(value: Any, what: str = "wallet") -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not an address: {str(value)[:50]!r}")
    return value.strip().lower()


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg', 'invalid')}"[:300]
    return str(exc)[:300]


def _items(
    rows: Sequence[Any], kind: str, one: Callable[[Mapping[str, Any]], T]
) -> tuple[list[T], list[BadPayload]]:
    good: list[T] = []
    bad: list[BadPayload] = []
    for raw in rows:
        if not isinstance(raw, Mapping):
            bad.append(BadPayload(kind, snippet(raw), "item is not an object"))
            continue
        try:
            good.append(one(raw))
        except (ValueError, TypeError, ValidationError) as exc:
            bad.append(BadPayload(kind, snippet(raw), _reason(exc)))
    return good, bad


def _rows(payload: Any, kind: str) -> tuple[list[Any], str | None]:
    """Rows and next cursor of any list reply we read: a bare array (Gamma, Data v1), the v2
    envelope `{data, pagination: {next_cursor, has_more}}`, the 2026 trades copy `{limit,
    next_cursor, count, data}`, the CLOB `{data, next_cursor}` and Gamma keyset
    `{markets|events, next_cursor}`. `data: null` is a documented miss (empty)."""
    if isinstance(payload, list):
        return payload, None
    if not isinstance(payload, Mapping):
        raise BadPayload(kind, snippet(payload), "reply is neither a list nor an object")
    for key in ("data", "markets", "events"):
        if key in payload:
            rows = payload[key]
            break
    else:
        raise BadPayload(kind, snippet(payload), "reply object has no data list")
    if rows is None:
        rows = []
    if not isinstance(rows, list):
        raise BadPayload(kind, snippet(payload), "reply data is not a list")
    pagination = payload.get("pagination")
    cursor: Any = None
    if isinstance(pagination, Mapping):
        cursor = pagination.get("next_cursor")
        if pagination.get("has_more") is False:
            cursor = None
    else:
        cursor = payload.get("next_cursor")
    if cursor in ("", CLOB_END_CURSOR):
        cursor = None
    if cursor is not None and not isinstance(cursor, str):
        raise BadPayload(kind, snippet(payload), f"next_cursor is not a string: {cursor!r}")
    return rows, cursor


def _page(payload: Any, kind: str, one: Callable[[Mapping[str, Any]], T]) -> Page[T]:
    rows, cursor = _rows(payload, kind)
    good, bad = _items(rows, kind, one)
    return Page(good, bad, cursor)


# --- Gamma ------------------------------------------------------------------------------------


def _tag_labels(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    labels = [t.get("label") if isinstance(t, Mapping) else t for t in raw]
    return tuple(str(x) for x in labels if isinstance(x, str) and x)


def gamma_market(raw: Mapping[str, Any], source: PolySource = "polymarket") -> PolyMarket:
    version = raw.get("version") or "v1"
    if version not in ("v1", "v2"):
        raise ValueError(f"unknown market version {version!r}")
    ids_raw = pick(raw, "positionIds") if version == "v2" else pick(raw, "clobTokenIds")
    if ids_raw is None or ids_raw in ("", "[]"):
        field_name = "positionIds" if version == "v2" else "clobTokenIds"
        raise ValueError(f"market has no token ids ({field_name} missing): cannot be traded")
    token_ids = [str(t) for t in json_list(ids_raw, "token ids")]
    names_raw = raw.get("outcomes")
    names = (
        [str(n) for n in json_list(names_raw, "outcomes")]
        if names_raw is not None
        else [f"#{i}" for i in range(len(token_ids))]
    )
    prices_raw = raw.get("outcomePrices")
    prices = json_list(prices_raw, "outcomePrices") if prices_raw is not None else []
    if len(names) != len(token_ids) or (prices and len(prices) != len(token_ids)):
        raise ValueError(
            f"{len(names)} outcomes, {len(token_ids)} token ids, {len(prices)} prices do not pair"
        )
    outcomes = tuple(
        PolyOutcome(
            name=name,
            token_id=token,
            price=number(prices[i], "outcome price") if prices else None,
        )
        for i, (name, token) in enumerate(zip(names, token_ids, strict=True))
    )
    events = raw.get("events")
    event_id = None
    tags = _tag_labels(raw.get("tags"))
    if isinstance(events, list) and events and isinstance(events[0], Mapping):
        event_id = str(events[0].get("id")) if events[0].get("id") is not None else None
        tags = tags or _tag_labels(events[0].get("tags"))
    condition = required(raw, "conditionId", "conditionId")
    return PolyMarket(
        market_id=str(pick(raw, "id") or condition),
        condition_id=str(condition).lower(),
        question=str(required(raw, "question", "question")),
        slug=pick(raw, "slug"),
        version=cast(Literal["v1", "v2"], version),
        outcomes=outcomes,
        category=pick(raw, "category"),
        tags=tags,
        event_id=event_id,
        volume_usd=optional_number(pick(raw, "volumeNum", "volume"), "volume"),
        liquidity_usd=optional_number(pick(raw, "liquidityNum", "liquidity"), "liquidity"),
        end_date=optional_time(pick(raw, "endDate", "endDateIso"), "endDate"),
        active=bool(raw.get("active", True)),
        closed=bool(raw.get("closed", False)),
        accepting_orders=raw.get("acceptingOrders"),
        tick_size=optional_number(raw.get("orderPriceMinTickSize"), "tick size"),
        neg_risk=bool(raw.get("negRisk", False)),
        best_bid=optional_number(raw.get("bestBid"), "bestBid"),
        best_ask=optional_number(raw.get("bestAsk"), "bestAsk"),
        source=source,
    )


def gamma_markets(payload: Any, source: PolySource = "polymarket") -> Page[PolyMarket]:
    if isinstance(payload, Mapping) and "conditionId" in payload:
        payload = [payload]  # /markets/{id} and /markets/slug/{slug} answer one object
    return _page(payload, "poly_market", lambda r: gamma_market(r, source))


def gamma_event(raw: Mapping[str, Any], source: PolySource = "polymarket") -> PolyEvent:
    tags = _tag_labels(raw.get("tags"))
    markets = []
    for m in raw.get("markets") or []:
        if isinstance(m, Mapping):
            merged = dict(m)
            merged.setdefault("events", [{"id": raw.get("id"), "tags": raw.get("tags")}])
            markets.append(merged)
    good, _ = _items(markets, "poly_market", lambda r: gamma_market(r, source))
    return PolyEvent(
        event_id=str(required(raw, "event id", "id")),
        slug=pick(raw, "slug"),
        title=str(required(raw, "title", "title")),
        end_date=optional_time(raw.get("endDate"), "endDate"),
        active=bool(raw.get("active", True)),
        closed=bool(raw.get("closed", False)),
        tags=tags,
        markets=tuple(good),
    )


def gamma_events(
    payload: Any, source: PolySource = "polymarket"
) -> tuple[Page[PolyEvent], list[BadPayload]]:
    """Events, and the markets inside them that had to be rejected (they are dead-lettered
    like any bad item; the event itself is kept with its good markets)."""
    if isinstance(payload, Mapping) and "title" in payload:
        payload = [payload]
    page = _page(payload, "poly_event", lambda r: gamma_event(r, source))
    rows, _ = _rows(payload, "poly_event")
    market_bad: list[BadPayload] = []
    for raw in rows:
        if isinstance(raw, Mapping):
            inner = [m for m in raw.get("markets") or [] if isinstance(m, Mapping)]
            market_bad.extend(_items(inner, "poly_market", lambda r: gamma_market(r, source))[1])
    return page, market_bad


def gamma_tags(payload: Any) -> Page[PolyTag]:
    return _page(
        payload,
        "poly_tag",
        lambda r: PolyTag(
            tag_id=str(required(r, "tag id", "id")),
            label=str(r.get("label") or ""),
            slug=str(r.get("slug") or ""),
        ),
    )


# --- CLOB -------------------------------------------------------------------------------------


def clob_market(raw: Mapping[str, Any], source: PolySource = "polymarket") -> PolyMarket:
    tokens = raw.get("tokens")
    if not isinstance(tokens, list) or not tokens:
        raise ValueError("market has no token ids (tokens missing): cannot be traded")
    outcomes = []
    for t in tokens:
        if not isinstance(t, Mapping) or not t.get("token_id"):
            raise ValueError(f"token without token_id: {snippet(t)[:80]}")
        outcomes.append(
            PolyOutcome(
                name=str(required(t, "token outcome", "outcome")),
                token_id=str(t["token_id"]),
                price=optional_number(t.get("price"), "token price"),
                winner=t.get("winner"),
            )
        )
    condition = str(required(raw, "condition_id", "condition_id")).lower()
    tags = raw.get("tags")
    return PolyMarket(
        market_id=condition,
        condition_id=condition,
        question=str(required(raw, "question", "question")),
        slug=pick(raw, "market_slug"),
        outcomes=tuple(outcomes),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        end_date=optional_time(raw.get("end_date_iso"), "end_date_iso"),
        active=bool(raw.get("active", True)),
        closed=bool(raw.get("closed", False)),
        accepting_orders=raw.get("accepting_orders"),
        tick_size=optional_number(raw.get("minimum_tick_size"), "minimum_tick_size"),
        neg_risk=bool(raw.get("neg_risk", False)),
        source=source,
    )


def clob_markets(payload: Any, source: PolySource = "polymarket") -> Page[PolyMarket]:
    if isinstance(payload, Mapping) and "condition_id" in payload:
        payload = [payload]
    return _page(payload, "poly_market", lambda r: clob_market(r, source))


def _levels(raw: Any, what: str, best_high: bool) -> tuple[BookLevel, ...]:
    if not isinstance(raw, list):
        raise ValueError(f"{what} is not a list")
    levels = []
    for lv in raw:
        if not isinstance(lv, Mapping):
            raise ValueError(f"{what} level is not an object")
        levels.append(
            BookLevel(price=number(lv.get("price"), f"{what} price"), size=number(lv.get("size"), f"{what} size"))
        )  # fmt: skip
    # the CLOB sends bids ascending and asks descending (best last); we keep best first
    return tuple(sorted(levels, key=lambda lv: -lv.price if best_high else lv.price))


def book(payload: Any) -> PolyBook:
    if not isinstance(payload, Mapping):
        raise BadPayload("poly_book", snippet(payload), "book reply is not an object")
    try:
        return PolyBook(
            condition_id=str(required(payload, "market", "market")).lower(),
            token_id=str(required(payload, "asset_id", "asset_id")),
            time=timestamp(required(payload, "timestamp", "timestamp"), "timestamp"),
            bids=_levels(payload.get("bids"), "bids", best_high=True),
            asks=_levels(payload.get("asks"), "asks", best_high=False),
            tick_size=optional_number(payload.get("tick_size"), "tick_size"),
            min_order_size=optional_number(payload.get("min_order_size"), "min_order_size"),
            last_trade_price=optional_number(payload.get("last_trade_price"), "last_trade_price"),
            neg_risk=payload.get("neg_risk") is True,
        )
    except (ValueError, TypeError, ValidationError) as exc:
        raise BadPayload("poly_book", snippet(payload), _reason(exc)) from exc


def scalar(payload: Any, key: str, kind: str) -> float:
    """`{price}`, `{mid}`, `{minimum_tick_size}`, `{base_fee}`: one number in an object."""
    if not isinstance(payload, Mapping) or key not in payload:
        raise BadPayload(kind, snippet(payload), f"reply has no {key!r}")
    try:
        return number(payload[key], key)
    except ValueError as exc:
        raise BadPayload(kind, snippet(payload), str(exc)) from exc


def probability(payload: Any, key: str, kind: str) -> float:
    value = scalar(payload, key, kind)
    if not 0 <= value <= 1:
        raise BadPayload(kind, snippet(payload), f"{key} {value} is not a probability")
    return value


def fee_rate_bps(payload: Any) -> float:
    value = scalar(payload, "base_fee", "poly_fee_rate")
    if value < 0:
        raise BadPayload("poly_fee_rate", snippet(payload), "negative fee rate")
    return value


def price_history(payload: Any, token_id: str) -> Page[PricePoint]:
    if not isinstance(payload, Mapping) or not isinstance(payload.get("history"), list):
        raise BadPayload("poly_price_history", snippet(payload), "reply has no history list")
    good, bad = _items(
        payload["history"],
        "poly_price_point",
        lambda r: PricePoint(token_id=token_id, time=timestamp(r.get("t"), "t"), price=number(r.get("p"), "p")),
    )  # fmt: skip
    return Page(good, bad, None)


# --- Data API ---------------------------------------------------------------------------------


def trade(raw: Mapping[str, Any], source: PolySource = "polymarket") -> PolyTrade:
    side = str(required(raw, "side", "side")).upper()
    return PolyTrade(
        wallet=wallet(required(raw, "proxyWallet", "proxyWallet", "proxy_wallet")),
        side=cast(Literal["BUY", "SELL"], side),
        token_id=str(required(raw, "asset", "asset", "token_id", "asset_id")),
        condition_id=str(required(raw, "conditionId", "conditionId", "condition_id")).lower(),
        size=number(required(raw, "size", "size"), "size"),
        price=number(required(raw, "price", "price"), "price"),
        time=timestamp(required(raw, "timestamp", "timestamp"), "timestamp"),
        tx_hash=pick(raw, "transactionHash", "transaction_hash"),
        outcome=pick(raw, "outcome"),
        outcome_index=pick(raw, "outcomeIndex", "outcome_index"),
        title=pick(raw, "title"),
        source=source,
    )


def trades(payload: Any, source: PolySource = "polymarket") -> Page[PolyTrade]:
    return _page(payload, "poly_trade", lambda r: trade(r, source))


def _v1_status(raw: Mapping[str, Any], size: float) -> PositionStatus:
    cur = optional_number(raw.get("curPrice"), "curPrice")
    if raw.get("redeemable"):
        return "REDEEMABLE_LOST" if cur is not None and cur <= 0.001 else "REDEEMABLE"
    if size <= 0:
        return "CLOSED"
    if raw.get("mergeable"):
        return "MERGEABLE"
    return "OPEN"


def position(raw: Mapping[str, Any], source: PolySource = "polymarket") -> PolyPosition:
    """v2 rows (`status`, `current_size`, `entry_cost_usdc`, `realized_pnl`, `unrealized_pnl`)
    and v1 rows (`size`, `avgPrice`, `totalBought`, `realizedPnl`, `cashPnl`, flags)."""
    avg = number(required(raw, "avg price", "avgPrice", "avg_price"), "avg price")
    if "status" in raw:  # v2
        size = number(required(raw, "current_size", "current_size", "size"), "current_size")
        status = str(raw["status"]).upper()
        cost = number(required(raw, "entry_cost_usdc", "entry_cost_usdc"), "entry_cost_usdc")
        unrealised = optional_number(raw.get("unrealized_pnl"), "unrealized_pnl")
    else:  # v1 (/positions, /closed-positions)
        size = number(required(raw, "size", "size"), "size")
        bought = optional_number(raw.get("totalBought"), "totalBought")
        cost = (
            (bought * avg)
            if bought is not None
            else number(required(raw, "initialValue", "initialValue"), "initialValue")
        )
        status = _v1_status(raw, size)
        unrealised = optional_number(raw.get("cashPnl"), "cashPnl")
    return PolyPosition(
        wallet=wallet(required(raw, "proxyWallet", "proxyWallet", "proxy_wallet")),
        token_id=str(required(raw, "asset", "asset", "token_id")),
        condition_id=str(required(raw, "conditionId", "conditionId", "condition_id")).lower(),
        status=cast(PositionStatus, status),
        size=size,
        avg_price=avg,
        cost_usd=cost,
        current_value_usd=optional_number(pick(raw, "currentValue", "current_value"), "current value"),
        realized_pnl_usd=number(required(raw, "realized pnl", "realizedPnl", "realized_pnl"), "realized pnl"),
        unrealized_pnl_usd=unrealised,
        outcome=pick(raw, "outcome"),
        outcome_index=pick(raw, "outcomeIndex", "outcome_index"),
        end_date=optional_time(pick(raw, "endDate", "end_date"), "end date"),
        title=pick(raw, "title"),
        source=source,
    )  # fmt: skip


def positions(payload: Any, source: PolySource = "polymarket") -> Page[PolyPosition]:
    return _page(payload, "poly_position", lambda r: position(r, source))


def leaderboard(
    payload: Any, period: Literal["DAY", "WEEK", "MONTH", "ALL"]
) -> Page[LeaderboardEntry]:
    return _page(
        payload,
        "poly_leaderboard",
        lambda r: LeaderboardEntry(
            rank=int(number(required(r, "rank", "rank"), "rank")),
            wallet=wallet(required(r, "proxyWallet", "proxyWallet", "proxy_wallet")),
            name=pick(r, "userName", "user_name", "name"),
            pnl_usd=number(required(r, "pnl", "pnl"), "pnl"),
            volume_usd=optional_number(pick(r, "vol", "volume"), "vol"),
            period=period,
        ),
    )  # fmt: skip


def holders(payload: Any) -> Page[Holder]:
    """v1: `[{token, holders: [...]}]` per outcome token; v2: flat rows with `token_id`."""
    rows, cursor = _rows(payload, "poly_holder")
    flat: list[Any] = []
    for group in rows:
        if isinstance(group, Mapping) and isinstance(group.get("holders"), list):
            token = group.get("token")
            flat.extend(
                {**h, "token_id": token} if isinstance(h, Mapping) else h for h in group["holders"]
            )
        else:
            flat.append(group)
    good, bad = _items(
        flat,
        "poly_holder",
        lambda r: Holder(
            wallet=wallet(required(r, "proxyWallet", "proxyWallet", "proxy_wallet")),
            token_id=str(required(r, "token", "token_id", "asset")),
            amount=number(required(r, "amount", "amount"), "amount"),
            outcome_index=pick(r, "outcomeIndex", "outcome_index"),
            name=pick(r, "name", "pseudonym"),
            pnl_usd=optional_number(pick(r, "pnl", "realized_pnl"), "pnl"),
        ),
    )  # fmt: skip
    return Page(good, bad, cursor)


def activity(payload: Any) -> Page[Activity]:
    return _page(
        payload,
        "poly_activity",
        lambda r: Activity(
            wallet=wallet(required(r, "proxyWallet", "proxyWallet", "proxy_wallet")),
            kind=str(required(r, "type", "type")).upper(),
            time=timestamp(required(r, "timestamp", "timestamp"), "timestamp"),
            condition_id=(str(c).lower() if (c := pick(r, "conditionId", "condition_id")) else None),
            token_id=(str(a) if (a := pick(r, "asset", "token_id")) else None),
            size=optional_number(r.get("size"), "size"),
            usd=optional_number(pick(r, "usdcSize", "usdc_size"), "usdcSize"),
            price=optional_number(r.get("price"), "price"),
            side=(str(s).upper() if (s := r.get("side")) else None),
            tx_hash=pick(r, "transactionHash", "transaction_hash"),
        ),
    )  # fmt: skip
