"""The simulator's Polymarket CLOB trading endpoints, under /clob, checking the real signatures
the way the perps simulator checks Bybit's HMAC (shared/api README §4.4):

- L1 (`POST /auth/api-key`, `GET /auth/derive-api-key`): the `ClobAuth` EIP-712 signature in
  POLY_SIGNATURE must recover to POLY_ADDRESS; the API key (deterministic per address and nonce)
  is bound to that address. Else 401 "Invalid L1 Request headers".
- L2 (orders, trades, balance, heartbeats): POLY_SIGNATURE must be
  urlsafe_b64(HMAC_SHA256(b64decode(secret), timestamp + METHOD + path + body)) over the raw
  body, by a known key whose address is POLY_ADDRESS. Else 401 "Unauthorized/Invalid api key".
- Orders: a V1-shaped order (nonce / feeRateBps / taker) is refused "order_version_mismatch".
  The order's signer must be the API key's address, or (signature type 3, POLY_1271) a deployed
  deposit wallet owned by that address: the key of a deposit-wallet account is derived by its
  owner EOA (L1 and L2 carry the EOA), while its orders carry the wallet as maker and signer
  (docs.polymarket.com/trading/deposit-wallets; py-clob-client-v2 1.2.1 and polymarket-client
  0.14.0 both form exactly this). Else "the order signer address has to be the address of the
  API KEY" -- what production answers for a deposit wallet not yet deployed / registered
  (py-clob-client-v2 issue #64) or one owned by another key. A V2 order's EIP-712 signature is
  then recovered against the V2 exchange domains: types 0-2 must recover to `signer`; type 3
  carries the ERC-7739 wrapper (inner 65-byte signature || app domain separator || contents
  hash || contents type || uint16 length), whose inner signature over the nested TypedDataSign
  (DepositWallet, version 1, the wallet, salt 0) must recover to the wallet's owner, with maker
  == signer == the wallet. Else "invalid signature". An owner with a deposit wallet (an account
  created on or after 2026-05-04) may not make orders from any other address ("maker address
  not allowed, please use the deposit wallet flow").
- Matching: FAK against the same book levels /book serves; nothing at the limit → "no orders
  found to match with FAK order. ..."; not enough cash or shares → "not enough balance /
  allowance"; a hash posted twice → "order {hash} is invalid. Duplicated.". Fills are trades
  with settlement transactions that appear in the Data API feeds (/data/v2/trades, positions);
  the `settle_fail` fault makes the next n trades FAILED (matched, never settled, not in the
  feeds).
- Geoblock: GET /web/api/geoblock answers like https://polymarket.com/api/geoblock; while the
  answer is blocked, POST /order refuses 403 "Trading restricted in your region": every order
  from an OFAC jurisdiction, buys from a close-only one (sells, which close, go through).
- Balance sync: GET /balance-allowance/update (L2, the docs' step after funding a deposit
  wallet) answers like the CLOB and counts the syncs.
Test hooks: POST /sim/poly/account (fund an owner, give it a deposit wallet / proxy, deployed
or not), POST
/sim/poly/geoblock, POST /sim/poly/clob-faults, GET /sim/poly/clob (orders, trades, heartbeats).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from quantcore.adapters.polymarket.clob import Geoblock
from quantcore.model.poly import PolyTrade
from quantcore.sim.poly import PolyWorld
from quantcore.trading import poly as rules

PREFIX = "/clob"
CHAIN_ID = 137
EXCHANGES_V2 = (  # CTF Exchange V2 and NegRisk Exchange V2 (shared/api README §4)
    "0xE111180000d2663C0091e4f400237545B87B996B",
    "0xe2222d279d744050d28e00520010520000310F59",
)
UNITS = Decimal(1_000_000)  # pUSD and outcome shares carry 6 decimals on chain
SIM_SECRET = b"whale-stack-sim-clob"
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"
ORDER_FIELDS = [
    {"name": "salt", "type": "uint256"}, {"name": "maker", "type": "address"},
    {"name": "signer", "type": "address"}, {"name": "tokenId", "type": "uint256"},
    {"name": "makerAmount", "type": "uint256"}, {"name": "takerAmount", "type": "uint256"},
    {"name": "side", "type": "uint8"}, {"name": "signatureType", "type": "uint8"},
    {"name": "timestamp", "type": "uint256"}, {"name": "metadata", "type": "bytes32"},
    {"name": "builder", "type": "bytes32"},
]  # fmt: skip
ORDER_TYPE = "Order(" + ",".join(f"{f['type']} {f['name']}" for f in ORDER_FIELDS) + ")"
TYPED_DATA_SIGN = (
    "TypedDataSign(Order contents,string name,string version,uint256 chainId,"
    "address verifyingContract,bytes32 salt)" + ORDER_TYPE
)
DOMAIN_FIELDS = [
    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"},
]  # fmt: skip

ERR_L1 = "Invalid L1 Request headers"
ERR_L2 = "Unauthorized/Invalid api key"
ERR_VERSION = "order_version_mismatch"
ERR_SIGNATURE = "invalid signature"
ERR_SIGNER_KEY = "the order signer address has to be the address of the API KEY"
ERR_MAKER = "maker address not allowed, please use the deposit wallet flow"
ERR_BALANCE = "not enough balance / allowance"
ERR_REGION = "Trading restricted in your region"
ERR_FAK = (
    "no orders found to match with FAK order. "
    "FAK orders are partially filled or killed if no match is found."
)


@dataclass(frozen=True)
class ApiKey:
    key: str
    secret: str
    passphrase: str
    address: str  # lower case


@dataclass
class Account_:
    owner: str
    usd: Decimal
    wallet: str | None = None  # the funder of signature types 1-3
    kind: str = "eoa"  # eoa | deposit | proxy | safe
    deployed: bool = True  # a deposit wallet the relayer created (WALLET-CREATE confirmed)


@dataclass
class ClobState:
    keys: dict[str, ApiKey] = field(default_factory=dict)
    accounts: dict[str, Account_] = field(default_factory=dict)  # owner → account
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    trades: dict[str, dict[str, Any]] = field(default_factory=dict)
    heartbeats: int = 0
    balance_syncs: int = 0
    settle_fail: int = 0
    geoblock: dict[str, Any] = field(
        default_factory=lambda: {
            "blocked": False,
            "ip": "127.0.0.1",
            "country": "IE",
            "region": "L",
        }
    )


CLOB = web.AppKey("poly_clob", ClobState)


def _world(request: web.Request) -> PolyWorld:
    from svc_simulator.polymarket import WORLD

    return request.app[WORLD]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _lower(value: Any) -> str:
    return str(value or "").lower()


# --- signatures ---------------------------------------------------------------------------------


def _recover(typed: dict[str, Any], signature: str) -> str | None:
    try:
        return _lower(
            Account.recover_message(encode_typed_data(full_message=typed), signature=signature)
        )
    except Exception:
        return None


def derive_key(address: str, nonce: int) -> ApiKey:
    digest = hmac.new(SIM_SECRET, f"{address}|{nonce}".encode(), hashlib.sha512).digest()
    return ApiKey(
        key=str(uuid.UUID(bytes=digest[:16])),
        secret=base64.urlsafe_b64encode(digest[16:48]).decode(),
        passphrase=digest[48:64].hex(),
        address=address,
    )


def l1_address(request: web.Request) -> str | None:
    h = request.headers
    address, signature = _lower(h.get("POLY_ADDRESS")), h.get("POLY_SIGNATURE") or ""
    try:
        timestamp, nonce = str(int(h.get("POLY_TIMESTAMP", ""))), int(h.get("POLY_NONCE", "0"))
    except ValueError:
        return None
    typed = {
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": CHAIN_ID},
        "types": {
            "EIP712Domain": DOMAIN_FIELDS[:3],
            "ClobAuth": [
                {"name": "address", "type": "address"}, {"name": "timestamp", "type": "string"},
                {"name": "nonce", "type": "uint256"}, {"name": "message", "type": "string"},
            ],
        },
        "primaryType": "ClobAuth",
        "message": {"address": h.get("POLY_ADDRESS"), "timestamp": timestamp, "nonce": nonce,
                    "message": CLOB_AUTH_MESSAGE},
    }  # fmt: skip
    if not address or _recover(typed, signature) != address:
        return None
    return address


def l2_key(request: web.Request, body: str) -> ApiKey | None:
    h = request.headers
    key = request.app[CLOB].keys.get(h.get("POLY_API_KEY") or "")
    if key is None or h.get("POLY_PASSPHRASE") != key.passphrase:
        return None
    if _lower(h.get("POLY_ADDRESS")) != key.address:
        return None
    path = request.path[len(PREFIX) :] if request.path.startswith(PREFIX) else request.path
    message = (h.get("POLY_TIMESTAMP") or "") + request.method + path + body
    expected = base64.urlsafe_b64encode(
        hmac.new(base64.urlsafe_b64decode(key.secret), message.encode(), hashlib.sha256).digest()
    ).decode()
    return key if hmac.compare_digest(expected, h.get("POLY_SIGNATURE") or "") else None


def _order_message(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "salt": int(o["salt"]), "maker": o["maker"], "signer": o["signer"],
        "tokenId": int(o["tokenId"]), "makerAmount": int(o["makerAmount"]),
        "takerAmount": int(o["takerAmount"]), "side": 0 if o["side"] == "BUY" else 1,
        "signatureType": int(o["signatureType"]), "timestamp": int(o["timestamp"]),
        "metadata": bytes.fromhex(str(o["metadata"]).removeprefix("0x").zfill(64)),
        "builder": bytes.fromhex(str(o["builder"]).removeprefix("0x").zfill(64)),
    }  # fmt: skip


def _typed_order(o: dict[str, Any], exchange: str) -> dict[str, Any]:
    return {
        "domain": {"name": "Polymarket CTF Exchange", "version": "2", "chainId": CHAIN_ID,
                   "verifyingContract": exchange},
        "types": {"EIP712Domain": DOMAIN_FIELDS, "Order": ORDER_FIELDS},
        "primaryType": "Order",
        "message": _order_message(o),
    }  # fmt: skip


def order_hash(o: dict[str, Any], exchange: str = EXCHANGES_V2[0]) -> str:
    signable = encode_typed_data(full_message=_typed_order(o, exchange))
    return "0x" + keccak(b"\x19" + signable.version + signable.header + signable.body).hex()


def _recover_1271(o: dict[str, Any], exchange: str) -> str | None:
    """The owner key behind a deposit wallet's ERC-7739 (TypedDataSign) order signature: inner
    65-byte signature || app domain separator || contents hash || contents type || uint16 length
    of the type; the trailer must be this order's (as the wallet's nested-EIP-712 check reads it)."""
    try:
        raw = bytes.fromhex(str(o["signature"]).removeprefix("0x"))
    except ValueError:
        return None
    if len(raw) < 65 + 64 + 2:
        return None
    inner, trailer = raw[:65], raw[65:]
    m = _order_message(o)
    contents = keccak(abi_encode(
        ["bytes32", "uint256", "address", "address", "uint256", "uint256", "uint256", "uint8",
         "uint8", "uint256", "bytes32", "bytes32"],
        [keccak(text=ORDER_TYPE), m["salt"], m["maker"], m["signer"], m["tokenId"],
         m["makerAmount"], m["takerAmount"], m["side"], m["signatureType"], m["timestamp"],
         m["metadata"], m["builder"]],
    ))  # fmt: skip
    domain = keccak(abi_encode(
        ["bytes32", "bytes32", "bytes32", "uint256", "address"],
        [keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
         keccak(text="Polymarket CTF Exchange"), keccak(text="2"), CHAIN_ID, exchange],
    ))  # fmt: skip
    type_text = ORDER_TYPE.encode()
    if trailer != domain + contents + type_text + len(type_text).to_bytes(2, "big"):
        return None
    wrapped = keccak(abi_encode(
        ["bytes32", "bytes32", "bytes32", "bytes32", "uint256", "address", "bytes32"],
        [keccak(text=TYPED_DATA_SIGN), contents, keccak(text="DepositWallet"), keccak(text="1"),
         CHAIN_ID, m["signer"], bytes(32)],
    ))  # fmt: skip
    try:
        return _lower(
            Account._recover_hash(keccak(b"\x19\x01" + domain + wrapped), signature=inner)
        )
    except Exception:
        return None


def check_order(state: ClobState, key: ApiKey, o: dict[str, Any]) -> tuple[str | None, str]:
    """Polymarket's refusal text for an order (None when its signatures and addresses hold) and
    the exchange it was signed for (its hash, the order id, is over that domain)."""
    exchange = EXCHANGES_V2[0]
    if any(f in o for f in ("nonce", "feeRateBps", "taker")) or "timestamp" not in o:
        return ERR_VERSION, exchange
    try:
        sig_type = int(o["signatureType"])
        maker, signer = _lower(o["maker"]), _lower(o["signer"])
    except (KeyError, ValueError):
        return ERR_SIGNATURE, exchange
    account = state.accounts.get(key.address)  # the API key's owner
    own_wallet = (
        account.wallet
        if account is not None and account.kind == "deposit" and account.deployed
        else None
    )
    if signer != key.address and not (sig_type == 3 and signer == own_wallet):
        return ERR_SIGNER_KEY, exchange
    if sig_type == 3:
        if not (maker == signer == own_wallet):  # else ERC-1271 validation fails (docs)
            return ERR_SIGNATURE, exchange  # e.g. the EOA as signer: no contract to ask
        good = [ex for ex in EXCHANGES_V2 if _recover_1271(o, ex) == key.address]
    else:
        sig = str(o.get("signature"))
        good = [ex for ex in EXCHANGES_V2 if _recover(_typed_order(o, ex), sig) == signer]
    if not good:
        return ERR_SIGNATURE, exchange
    exchange = good[0]
    if sig_type != 3 and account is not None and account.kind == "deposit":
        return ERR_MAKER, exchange  # an account with a deposit wallet trades only through it
    if sig_type == 0 and maker != signer:
        return ERR_MAKER, exchange
    return None, exchange


# --- money --------------------------------------------------------------------------------------


def cash(state: ClobState, world: PolyWorld, funder: str, owner: str) -> Decimal:
    account = state.accounts.get(owner)
    total = account.usd if account is not None else Decimal(0)
    held: dict[str, Decimal] = {}
    for t in state.trades.values():
        if t["maker_address"] != funder or t["status"] == "FAILED":
            continue
        size, price, fee = Decimal(t["size"]), Decimal(t["price"]), Decimal(t["fee"])
        if t["side"] == "BUY":
            total -= size * price + fee
            held[t["asset_id"]] = held.get(t["asset_id"], Decimal(0)) + size
        else:
            total += size * price - fee
            held[t["asset_id"]] = held.get(t["asset_id"], Decimal(0)) - size
    for token, shares in held.items():  # resolved markets pay out (redeemed automatically)
        m, _, _ = world.book(token)
        if m.closed(world.now) and m.token_ids.index(token) == m.winner:
            total += shares
    return total


def held_shares(state: ClobState, funder: str, token: str) -> Decimal:
    n = Decimal(0)
    for t in state.trades.values():
        if t["maker_address"] == funder and t["asset_id"] == token and t["status"] != "FAILED":
            n += Decimal(t["size"]) * (1 if t["side"] == "BUY" else -1)
    return n


def funder_of(state: ClobState, key: ApiKey, sig_type: int) -> str:
    account = state.accounts.get(key.address)
    if sig_type != 0 and account is not None and account.wallet:
        return account.wallet
    return key.address


# --- handlers -----------------------------------------------------------------------------------


async def create_api_key(request: web.Request) -> web.Response:
    address = l1_address(request)
    if address is None:
        return _error(401, ERR_L1)
    key = derive_key(address, int(request.headers.get("POLY_NONCE", "0")))
    request.app[CLOB].keys[key.key] = key
    return web.json_response(
        {"apiKey": key.key, "secret": key.secret, "passphrase": key.passphrase}
    )


async def post_order(request: web.Request) -> web.Response:
    state, world = request.app[CLOB], _world(request)
    raw = await request.text()
    key = l2_key(request, raw)
    if key is None:
        return _error(401, ERR_L2)
    try:
        body = json.loads(raw)
        o = body["order"]
    except (ValueError, KeyError, TypeError):
        return _error(400, "Invalid payload")
    if body.get("owner") != key.key:
        return _error(401, ERR_L2)
    refusal, exchange = check_order(state, key, o)
    if refusal is not None:
        return _error(400, refusal)
    g = state.geoblock
    access = Geoblock(bool(g.get("blocked")), g.get("ip"), g.get("country"), g.get("region")).access
    if access == "blocked" or (access == "close_only" and o.get("side") == "BUY"):
        return _error(403, ERR_REGION)
    oid = order_hash(o, exchange)
    if oid in state.orders:
        return _error(400, f"order {oid} is invalid. Duplicated.")
    return _match(state, world, o, oid, key)


def _match(
    state: ClobState, world: PolyWorld, o: dict[str, Any], oid: str, key: ApiKey
) -> web.Response:
    from svc_simulator.polymarket import book_levels

    token, buy, maker = str(o["tokenId"]), o["side"] == "BUY", _lower(o["maker"])
    making, taking = Decimal(o["makerAmount"]) / UNITS, Decimal(o["takerAmount"]) / UNITS
    shares, limit = (taking, making / taking) if buy else (making, taking / making)
    try:
        m, bids, asks = book_levels(world, token)
    except KeyError:
        return _error(400, "Invalid token id")
    levels = [
        rules.Level(Decimal(lv["price"]), Decimal(lv["size"])) for lv in (asks if buy else bids)
    ]
    fills = rules.walk_book(levels, buy, limit, rules.floor_shares(shares))
    fees = rules.FeeSchedule(rate=Decimal(str(world.fee_rate_bps)) / 10_000)
    cost = sum(
        (f.shares * f.price + rules.taker_fee(f.shares, f.price, fees) for f in fills), Decimal(0)
    )
    if buy and cost > cash(state, world, maker, key.address):
        return _error(400, ERR_BALANCE)
    if not buy and shares > held_shares(state, maker, token):
        return _error(400, ERR_BALANCE)
    now = datetime.fromtimestamp(world.now, UTC)
    record = {
        "id": oid, "status": "MATCHED" if fills else "CANCELED", "owner": key.key,
        "maker_address": maker, "market": m.condition_id, "asset_id": token,
        "side": o["side"], "original_size": str(shares), "price": str(limit),
        "size_matched": str(sum((f.shares for f in fills), Decimal(0))), "order_type": "FAK",
        "associate_trades": [], "created_at": int(world.now),
    }  # fmt: skip
    state.orders[oid] = record
    if not fills:
        return _error(400, ERR_FAK)
    outcome = m.token_ids.index(token)
    for f in fills:
        trade_id = str(uuid.uuid4())
        failed = state.settle_fail > 0
        state.settle_fail -= 1 if failed else 0
        tx = None if failed else "0x" + hashlib.sha256(trade_id.encode()).hexdigest()
        state.trades[trade_id] = {
            "id": trade_id, "taker_order_id": oid, "market": m.condition_id, "asset_id": token,
            "side": o["side"], "size": str(f.shares), "price": str(f.price),
            "fee": str(rules.taker_fee(f.shares, f.price, fees)),
            "status": "FAILED" if failed else "CONFIRMED", "match_time": str(int(world.now)),
            "transaction_hash": tx or "", "maker_address": maker, "trader_side": "TAKER",
            "owner": key.key,
        }  # fmt: skip
        record["associate_trades"].append(trade_id)
        if tx is not None:  # settled: the Data API shows it
            world.add_trade(PolyTrade(
                wallet=maker, side="BUY" if buy else "SELL", token_id=token,
                condition_id=m.condition_id, size=float(f.shares), price=float(f.price), time=now,
                tx_hash=tx, outcome="Yes" if outcome == 0 else "No", outcome_index=outcome,
                title=m.question, source="sim",
            ))  # fmt: skip
    trades = [state.trades[t] for t in record["associate_trades"]]
    filled = sum((Decimal(t["size"]) for t in trades), Decimal(0))
    notional = sum((Decimal(t["size"]) * Decimal(t["price"]) for t in trades), Decimal(0))
    return web.json_response({
        "success": True, "errorMsg": "", "orderID": oid, "status": "matched",
        "makingAmount": str(notional if buy else filled), "takingAmount": str(filled if buy else notional),
        "tradeIDs": record["associate_trades"],
        "transactionsHashes": [t["transaction_hash"] for t in trades if t["transaction_hash"]],
    })  # fmt: skip


async def get_order(request: web.Request) -> web.Response:
    if l2_key(request, "") is None:
        return _error(401, ERR_L2)
    order = request.app[CLOB].orders.get(request.match_info["id"])
    if order is None:
        return _error(404, "order not found")
    return web.json_response(order)


async def get_trades(request: web.Request) -> web.Response:
    key = l2_key(request, "")
    if key is None:
        return _error(401, ERR_L2)
    q = request.query
    rows = [
        {k: v for k, v in t.items() if k != "fee"}
        for t in request.app[CLOB].trades.values()
        if t["owner"] == key.key
        and (not q.get("id") or t["id"] == q["id"])
        and (not q.get("asset_id") or t["asset_id"] == q["asset_id"])
        and (not q.get("market") or t["market"] == q["market"])
    ]
    return web.json_response(
        {"data": rows, "next_cursor": "LTE=", "limit": 500, "count": len(rows)}
    )


async def balance_allowance(request: web.Request) -> web.Response:
    key = l2_key(request, "")
    if key is None:
        return _error(401, ERR_L2)
    state = request.app[CLOB]
    funder = funder_of(state, key, int(request.query.get("signature_type", "0")))
    usd = cash(state, _world(request), funder, key.address)
    return web.json_response({
        "balance": str(int(usd * UNITS)),
        "allowances": {ex: "115792089237316195423570985008687907853269984665640564039457584007913129639935" for ex in EXCHANGES_V2},
    })  # fmt: skip


async def update_balance_allowance(request: web.Request) -> web.Response:
    """GET /balance-allowance/update: the CLOB re-reads the funder's balance and allowances."""
    if l2_key(request, "") is None:
        return _error(401, ERR_L2)
    request.app[CLOB].balance_syncs += 1
    return web.json_response("OK")


async def heartbeat(request: web.Request) -> web.Response:
    if l2_key(request, await request.text()) is None:
        return _error(401, ERR_L2)
    request.app[CLOB].heartbeats += 1
    return web.json_response({"status": "ok"})


async def version(request: web.Request) -> web.Response:
    return web.json_response({"version": 2})


async def neg_risk(request: web.Request) -> web.Response:
    return web.json_response({"neg_risk": False})


async def geoblock(request: web.Request) -> web.Response:
    return web.json_response(request.app[CLOB].geoblock)


# --- hooks (tests only) -------------------------------------------------------------------------


async def set_account(request: web.Request) -> web.Response:
    body = await request.json()
    owner = _lower(body["owner"])
    request.app[CLOB].accounts[owner] = Account_(
        owner=owner, usd=Decimal(str(body.get("usd", 0))), wallet=_lower(body.get("wallet")) or None,
        kind=str(body.get("kind", "eoa")), deployed=bool(body.get("deployed", True)),
    )  # fmt: skip
    return web.json_response({"ok": True})


async def set_geoblock(request: web.Request) -> web.Response:
    request.app[CLOB].geoblock.update(await request.json())
    return web.json_response(request.app[CLOB].geoblock)


async def set_faults(request: web.Request) -> web.Response:
    body = await request.json()
    request.app[CLOB].settle_fail = int(body.get("settle_fail", 0))
    return web.json_response({"settle_fail": request.app[CLOB].settle_fail})


async def view(request: web.Request) -> web.Response:
    state = request.app[CLOB]
    return web.json_response({
        "orders": list(state.orders.values()),
        "trades": list(state.trades.values()), "heartbeats": state.heartbeats,
        "balance_syncs": state.balance_syncs,
    })  # fmt: skip


def add_routes(app: web.Application) -> None:
    app[CLOB] = ClobState()
    p = PREFIX
    app.router.add_post(p + "/auth/api-key", create_api_key)
    app.router.add_get(p + "/auth/derive-api-key", create_api_key)
    app.router.add_post(p + "/order", post_order)
    app.router.add_get(p + "/data/order/{id}", get_order)
    app.router.add_get(p + "/data/trades", get_trades)
    app.router.add_get(p + "/balance-allowance", balance_allowance)
    app.router.add_get(p + "/balance-allowance/update", update_balance_allowance)
    app.router.add_post(p + "/v1/heartbeats", heartbeat)
    app.router.add_get(p + "/version", version)
    app.router.add_get(p + "/neg-risk", neg_risk)
    app.router.add_get("/web/api/geoblock", geoblock)
    app.router.add_post("/sim/poly/account", set_account)
    app.router.add_post("/sim/poly/geoblock", set_geoblock)
    app.router.add_post("/sim/poly/clob-faults", set_faults)
    app.router.add_get("/sim/poly/clob", view)
