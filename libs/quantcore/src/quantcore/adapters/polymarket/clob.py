"""Polymarket CLOB V2 trading through Polymarket's client `py-clob-client-v2` (shared/api
README §4.4–4.5): L1 auth (an EIP-712 `ClobAuth` signature by the wallet key) derives the API
key, L2 auth (HMAC headers) signs every trading request, orders are EIP-712 V2 orders signed by
the client (signature type 0 EOA, 1 proxy, 2 Safe, 3 deposit wallet / POLY_1271 with the
ERC-7739 wrapper), posted FAK. The client is synchronous: every call runs in a worker thread.

Deposit wallets (signature type 3, every account created after 2026-05-04), as documented at
https://docs.polymarket.com/trading/deposit-wallets ("Place CLOB Orders", "Sync Balance and
Allowance") and as both official Python SDKs form it (py-clob-client-v2 1.2.1 and the unified
polymarket-client 0.14.0, whose `sign_api_key_auth` and L2 header resolver use the signer's own
address): the API key is derived by the owner EOA (L1 `ClobAuth` over the EOA, POLY_ADDRESS the
EOA, on L2 too); each order has maker = signer = the deposit wallet, signatureType 3, and the
owner's ERC-7739 signature (a TypedDataSign over the order nested in the DepositWallet domain)
with its trailer. The CLOB accepts that signer for the EOA's key once the wallet is deployed
through the relayer (WALLET-CREATE confirmed); before that it answers "the order signer address
has to be the address of the API KEY" (py-clob-client-v2 issue #64). The client lacks two steps
the docs require, done here: a type-3 account must name its deposit wallet as funder (the
client would otherwise sign with maker = signer = the EOA), and after connecting the CLOB's
balance cache is synced with signature_type 3 (`GET /balance-allowance/update`).

Venue words stop here: the live venue gets `SignedOrder`, `PostAnswer` and `ClobTrade` records.
The order id at Polymarket is the EIP-712 hash of the signed order, computed here before the
order is posted, so a crash between posting and recording leaves nothing unknowable: the
stored signed order is looked up by its hash, and re-posted unchanged only if the CLOB never
got it.

`geoblock()` reads Polymarket's geoblock endpoint (https://polymarket.com/api/geoblock, on
polymarket.com, not the API hosts): `{blocked, ip, country, region}`. `blocked: true` covers two
groups (https://docs.polymarket.com/api-reference/geoblock, "Restricted Jurisdictions"): the
OFAC-sanctioned ones ("Block Completely": no new orders, positions cannot be closed) and the
regulatory close-only ones ("users can close existing positions but cannot open new ones");
the answer does not say which, so `Geoblock.access` reads it from the country / ISO 3166-2
region: OFAC list → "blocked", any other blocked answer → "close_only".
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, TypeVar

import httpx
from py_clob_client_v2 import ClobClient, OrderType, PartialCreateOrderOptions
from py_clob_client_v2.clob_types import (
    AssetType,
    BalanceAllowanceParams,
    OrderArgsV2,
    TradeParams,
)
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.exceptions import PolyApiException, PolyException
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import SignedOrderV2, order_to_json_v2

from quantcore.errors import PermanentError, TemporaryError
from quantcore.logging import get_logger

T = TypeVar("T")
log = get_logger(component="polymarket_clob")
GEOBLOCK_URL = "https://polymarket.com/api/geoblock"
POLYGON = 137
DEPOSIT_WALLET = 3  # signature type POLY_1271
COLLATERAL_DECIMALS = Decimal(1_000_000)  # pUSD has 6 decimals; balances come in base units
TRADE_FAILED = "FAILED"
FAK_UNMATCHED = "no orders found to match with FAK order"  # HTTP 400 when a FAK finds no match


class ClobRejected(PermanentError):
    """The CLOB refused the request (4xx): `message` is Polymarket's own error text."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"Polymarket CLOB HTTP {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ClobAccount:
    host: str  # the CLOB base URL (the simulator's /clob in tests)
    private_key: str = field(repr=False)  # never in a log line or an error message
    signature_type: int = 3  # 0 EOA, 1 proxy, 2 Safe, 3 deposit wallet (POLY_1271)
    funder: str | None = None  # the address holding the funds (deposit wallet, proxy, Safe)
    chain_id: int = POLYGON


@dataclass(frozen=True)
class SignedOrder:
    order_hash: str  # Polymarket's order id
    body: dict[str, Any]  # the signed order as order_to_json_v2 lays it out (owner left out)


@dataclass(frozen=True)
class PostAnswer:
    order_hash: str
    status: str  # the CLOB's word: matched / live / delayed / unmatched
    trade_ids: tuple[str, ...]
    tx_hashes: tuple[str, ...]
    error: str | None


@dataclass(frozen=True)
class ClobTrade:
    trade_id: str
    status: str  # MATCHED / MINED / CONFIRMED / RETRYING / FAILED
    tx_hash: str | None


# "OFAC-Sanctioned Jurisdictions (Block Completely)", docs.polymarket.com/api-reference/geoblock
OFAC_BLOCKED = frozenset({"IR", "SY", "CU", "KP", "UA-43", "UA-14", "UA-09"})
GeoAccess = Literal["open", "close_only", "blocked"]


@dataclass(frozen=True)
class Geoblock:
    blocked: bool
    ip: str | None
    country: str | None
    region: str | None

    @property
    def access(self) -> GeoAccess:
        """open: trade; close_only: exits only; blocked: nothing (OFAC)."""
        if not self.blocked:
            return "open"
        country = (self.country or "").upper()
        region = (self.region or "").upper()
        codes = {country, region, f"{country}-{region.removeprefix(country + '-')}"}
        return "blocked" if codes & OFAC_BLOCKED else "close_only"


def _message(exc: PolyApiException) -> str:
    body = exc.error_msg
    if isinstance(body, Mapping):
        return str(body.get("error") or body.get("errorMsg") or body)[:300]
    return str(body)[:300]


def _translate(exc: Exception, what: str) -> Exception:
    if isinstance(exc, PolyApiException):
        status = exc.status_code
        if status is None or status >= 500 or status == 429:
            return TemporaryError(f"Polymarket CLOB {what}: {_message(exc)} (HTTP {status})")
        return ClobRejected(status, _message(exc))
    if isinstance(exc, PolyException):
        return ClobRejected(None, str(exc.msg))
    return exc


def _side(side: Literal["buy", "sell"]) -> str:
    return "BUY" if side == "buy" else "SELL"


class ClobTrader:
    """One trading account on the CLOB. `connect()` derives the API key (L1) first."""

    def __init__(self, account: ClobAccount) -> None:
        self.account = account
        self._client = ClobClient(
            host=account.host, chain_id=account.chain_id, key=account.private_key,
            signature_type=account.signature_type, funder=account.funder,
        )  # fmt: skip
        if account.signature_type == DEPOSIT_WALLET and (
            not account.funder or account.funder.lower() == self.signer.lower()
        ):
            raise ValueError(
                "signature type 3 (deposit wallet) needs the deposit wallet's address as funder, "
                "not the owner key's"
            )

    @property
    def signer(self) -> str:
        return str(self._client.get_address())

    @property
    def funder(self) -> str:
        """The address whose positions and trades the Data API reports (maker of our orders)."""
        return str(self._client.builder.funder)

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except (PolyApiException, PolyException) as exc:
            raise _translate(exc, what) from exc

    async def connect(self) -> None:
        """L1: derive the API key bound to our wallet key (create it the first time)."""
        creds = await self._call("api key", self._client.create_or_derive_api_key)
        if not creds.api_key:
            raise ClobRejected(None, "no API key came back from L1 authentication")
        self._client.set_api_creds(creds)
        if self.account.signature_type == DEPOSIT_WALLET:  # the docs' step after funding
            params = BalanceAllowanceParams(asset_type=AssetType.COLLATERAL,
                                            signature_type=DEPOSIT_WALLET)  # fmt: skip
            await self._call("balance sync", lambda: self._client.update_balance_allowance(params))

    async def sign(
        self,
        token_id: str,
        side: Literal["buy", "sell"],
        price: Decimal,
        shares: Decimal,
        tick: Decimal,
        neg_risk: bool = False,
    ) -> SignedOrder:
        """A V2 order signed by the client (EIP-712, the signature type of the account)."""
        args = OrderArgsV2(token_id=token_id, price=float(price), size=float(shares),
                           side=_side(side))  # fmt: skip
        options = PartialCreateOrderOptions(tick_size=str(tick), neg_risk=neg_risk, version=2)
        order = await self._call("sign", lambda: self._client.create_order(args, options))
        if not isinstance(order, SignedOrderV2):
            raise ClobRejected(None, f"the client signed a {type(order).__name__}, not a V2 order")
        body = order_to_json_v2(order, "", OrderType.FAK)["order"]
        return SignedOrder(order_hash=self._hash(order, neg_risk), body=body)

    def _hash(self, order: SignedOrderV2, neg_risk: bool) -> str:
        config = get_contract_config(self.account.chain_id)
        exchange = config.neg_risk_exchange_v2 if neg_risk else config.exchange_v2
        builder = ExchangeOrderBuilderV2(exchange, self.account.chain_id, self._client.signer)
        return str(builder.build_order_hash(builder.build_order_typed_data(order)))

    async def post(self, signed: SignedOrder) -> PostAnswer:
        """Post a signed order FAK (taken against the book at once, the rest cancelled)."""
        order = _rebuild(signed.body)
        try:
            answer = await self._call(
                "post order", lambda: self._client.post_order(order, OrderType.FAK)
            )
        except ClobRejected as exc:
            if FAK_UNMATCHED in exc.message:  # FAK's defined outcome, not a fault: nothing filled
                return PostAnswer(signed.order_hash, "unmatched", (), (), None)
            raise
        if not isinstance(answer, Mapping):
            raise TemporaryError(f"Polymarket CLOB post order: unexpected answer {answer!r:.120}")
        if answer.get("success") is False or answer.get("errorMsg"):
            return PostAnswer(signed.order_hash, str(answer.get("status") or "rejected"), (), (),
                              str(answer.get("errorMsg") or "refused"))  # fmt: skip
        return PostAnswer(
            order_hash=str(answer.get("orderID") or signed.order_hash),
            status=str(answer.get("status") or ""),
            trade_ids=tuple(str(t) for t in answer.get("tradeIDs") or ()),
            tx_hashes=tuple(str(t) for t in answer.get("transactionsHashes") or ()),
            error=None,
        )

    async def heartbeat(self) -> None:
        """POST /v1/heartbeats (L2): while they keep coming, the CLOB keeps our open orders; if
        they stop, it cancels them all (a dead-man switch)."""
        await self._call("heartbeat", self._client.post_heartbeat)

    async def order(self, order_hash: str) -> dict[str, Any] | None:
        """The CLOB's record of an order, None when it never got it."""
        try:
            found = await self._call("get order", lambda: self._client.get_order(order_hash))
        except ClobRejected as exc:
            if exc.status == 404:
                return None
            raise
        return dict(found) if isinstance(found, Mapping) and found else None

    async def trades(self, trade_ids: tuple[str, ...]) -> list[ClobTrade]:
        """Our trades as the CLOB reports them (status, settlement transaction)."""
        out: list[ClobTrade] = []
        for trade_id in trade_ids:
            rows: list[dict[str, Any]] = await self._call(
                "trades", functools.partial(self._client.get_trades, TradeParams(id=trade_id), True)
            )
            for row in rows:
                if str(row.get("id")) == trade_id:
                    out.append(ClobTrade(trade_id, str(row.get("status") or "").upper(),
                                         row.get("transaction_hash") or None))  # fmt: skip
        return out

    async def cash(self) -> Decimal:
        """Collateral (pUSD) the CLOB sees for our account, in dollars."""
        params = BalanceAllowanceParams(asset_type=AssetType.COLLATERAL)
        answer = await self._call("balance", lambda: self._client.get_balance_allowance(params))
        try:
            return Decimal(str(answer["balance"])) / COLLATERAL_DECIMALS
        except (KeyError, TypeError, ArithmeticError) as exc:
            raise TemporaryError(
                f"Polymarket CLOB balance: unexpected answer {answer!r:.120}"
            ) from exc

    async def close(self) -> None:
        return None


def _rebuild(body: Mapping[str, Any]) -> SignedOrderV2:
    """The client's signed-order record back from the stored body (posted unchanged)."""
    from py_clob_client_v2.order_utils.model.side import Side as OrderSide
    from py_clob_client_v2.order_utils.model.signature_type_v2 import SignatureTypeV2

    return SignedOrderV2(
        salt=str(body["salt"]), maker=str(body["maker"]), signer=str(body["signer"]),
        tokenId=str(body["tokenId"]), makerAmount=str(body["makerAmount"]),
        takerAmount=str(body["takerAmount"]),
        side=OrderSide.BUY if body["side"] == "BUY" else OrderSide.SELL,
        signatureType=SignatureTypeV2(int(body["signatureType"])), timestamp=str(body["timestamp"]),
        metadata=str(body["metadata"]), builder=str(body["builder"]),
        expiration=str(body.get("expiration") or "0"), signature=str(body["signature"]),
    )  # fmt: skip


async def geoblock(url: str = GEOBLOCK_URL, timeout_s: float = 10.0) -> Geoblock:
    """Polymarket's verdict on this machine's IP; an unreadable answer is an error, never a
    pass."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise TemporaryError(f"Polymarket geoblock check: {exc!r}") from exc
    try:
        body = response.json()
    except ValueError as exc:
        raise TemporaryError(
            f"Polymarket geoblock check HTTP {response.status_code}: not JSON"
        ) from exc
    if response.status_code != 200 or not isinstance(body, Mapping):
        raise TemporaryError(
            f"Polymarket geoblock check HTTP {response.status_code}: {body!r:.120}"
        )
    blocked = body.get("blocked")
    if not isinstance(blocked, bool):
        raise TemporaryError(f"Polymarket geoblock check: no boolean 'blocked' in {body!r:.120}")
    return Geoblock(blocked, body.get("ip"), body.get("country"), body.get("region"))
