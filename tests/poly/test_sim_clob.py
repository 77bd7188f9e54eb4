"""The simulator's CLOB order endpoints checked through Polymarket's own client
(py-clob-client-v2) with real keys and real signatures: L1 key derivation, L2 HMAC, V2 EIP-712
orders (EOA and deposit wallet / ERC-7739: accepted for the owner's key and filled for the
wallet), and Polymarket's refusal texts for a wrong key, a V1-signed order, a tampered
signature, the deposit-wallet rules, a FAK without a match."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from decimal import Decimal

import httpx
import pytest
from eth_account import Account
from py_clob_client_v2 import ClobClient, OrderType, PartialCreateOrderOptions
from py_clob_client_v2.clob_types import OrderArgsV1, OrderArgsV2
from py_clob_client_v2.exceptions import PolyApiException

from quantcore.adapters.polymarket.clob import (
    ClobAccount,
    ClobRejected,
    ClobTrader,
    Geoblock,
    SignedOrder,
    geoblock,
)
from quantcore.adapters.polymarket.rest import PolymarketClient
from svc_simulator.polymarket_clob import (
    ERR_FAK,
    ERR_L1,
    ERR_L2,
    ERR_MAKER,
    ERR_REGION,
    ERR_SIGNATURE,
    ERR_SIGNER_KEY,
    ERR_VERSION,
    ORDER_TYPE,
)
from tests.poly.conftest import PolySim

D = Decimal
TICK = D("0.01")


async def fund(sim: PolySim, owner: str, usd: float = 1000.0, **extra: str | bool) -> None:
    async with httpx.AsyncClient() as c:
        r = await c.post(sim.url + "/sim/poly/account", json={"owner": owner, "usd": usd, **extra})
        r.raise_for_status()


async def clob_view(sim: PolySim) -> dict:
    async with httpx.AsyncClient() as c:
        return (await c.get(sim.url + "/sim/poly/clob")).json()


def open_token(sim: PolySim) -> tuple[str, str, float]:
    for m in sim.world.markets:
        if not m.closed(sim.world.now):
            token = m.token_ids[0]
            _, _, ask = sim.world.book(token)
            if 0.05 < ask < 0.9:
                return m.condition_id, token, ask
    raise AssertionError("no open market")


@pytest.fixture
async def eoa(poly_sim: PolySim) -> ClobTrader:
    """A funded, grandfathered EOA account (signature type 0) with its API key derived."""
    acct = Account.create()
    await fund(poly_sim, acct.address)
    trader = ClobTrader(ClobAccount(poly_sim.url + "/clob", acct.key.hex(), signature_type=0))
    await trader.connect()
    return trader


async def test_v2_order_through_the_client_fills_and_shows_in_the_data_api(
    poly_sim: PolySim, poly_client: PolymarketClient, eoa: ClobTrader
) -> None:
    cond, token, ask = open_token(poly_sim)
    signed = await eoa.sign(token, "buy", D(str(ask)), D(10), TICK)
    answer = await eoa.post(signed)
    assert answer.error is None and answer.status == "matched"
    assert answer.order_hash == signed.order_hash  # the CLOB's id is the EIP-712 hash we computed
    assert len(answer.tx_hashes) == len(answer.trade_ids) == 1
    feed = await poly_client.trades_page(user=eoa.funder.lower(), conditions=[cond])
    assert [(t.tx_hash, t.size, t.price) for t in feed.items] == [(answer.tx_hashes[0], 10.0, ask)]
    positions = await poly_client.positions_page(eoa.funder.lower(), status="OPEN")
    assert [(p.token_id, p.size) for p in positions.items] == [(token, 10.0)]
    assert await eoa.cash() == D(1000) - D(10) * D(str(ask))  # the world's fee rate is 0
    found = await eoa.order(signed.order_hash)
    assert found is not None and found["size_matched"] == "10.00"
    await eoa.heartbeat()
    # the same signed order again: Polymarket's duplicate text, nothing placed twice
    with pytest.raises(ClobRejected, match=re.escape("is invalid. Duplicated.")):
        await eoa.post(signed)
    view = await clob_view(poly_sim)
    assert len(view["orders"]) == 1 and view["heartbeats"] == 1


async def test_wrong_api_key_is_refused_with_polymarkets_text(
    poly_sim: PolySim, eoa: ClobTrader
) -> None:
    _, token, ask = open_token(poly_sim)
    signed = await eoa.sign(token, "buy", D(str(ask)), D(5), TICK)
    creds = eoa._client.creds
    # a wrong secret: the HMAC does not verify
    eoa._client.set_api_creds(
        replace(creds, api_secret="c2VjcmV0LW9mLXNvbWVvbmUtZWxzZS0zMi1ieXRlcyE=")
    )
    with pytest.raises(ClobRejected) as err:
        await eoa.post(signed)
    assert (err.value.status, err.value.message) == (401, ERR_L2)
    # another wallet's (valid) key: bound to another address
    other = Account.create()
    c2 = ClobClient(poly_sim.url + "/clob", chain_id=137, key=other.key.hex())
    eoa._client.set_api_creds(await asyncio.to_thread(c2.create_or_derive_api_key))
    with pytest.raises(ClobRejected) as err:
        await eoa.post(signed)
    assert (err.value.status, err.value.message) == (401, ERR_L2)
    assert (await clob_view(poly_sim))["orders"] == []


async def test_l1_signature_of_another_wallet_is_refused(poly_sim: PolySim) -> None:
    a, b = Account.create(), Account.create()
    headers = ClobClient(poly_sim.url + "/clob", chain_id=137, key=b.key.hex())._l1_headers()
    headers["POLY_ADDRESS"] = a.address  # claims a's key with b's signature
    async with httpx.AsyncClient() as c:
        r = await c.get(poly_sim.url + "/clob/auth/derive-api-key", headers=headers)
    assert (r.status_code, r.json()) == (401, {"error": ERR_L1})


async def test_v1_signed_order_is_refused(poly_sim: PolySim) -> None:
    acct = Account.create()
    await fund(poly_sim, acct.address)
    client = ClobClient(poly_sim.url + "/clob", chain_id=137, key=acct.key.hex())
    client.set_api_creds(await asyncio.to_thread(client.create_or_derive_api_key))
    _, token, ask = open_token(poly_sim)
    v1 = await asyncio.to_thread(
        client.create_order,
        OrderArgsV1(token_id=token, price=ask, size=5, side="BUY"),
        PartialCreateOrderOptions(tick_size="0.01", neg_risk=False, version=1),
    )
    assert hasattr(v1, "feeRateBps") and not hasattr(v1, "metadata")  # a V1 order indeed
    with pytest.raises(PolyApiException) as err:
        await asyncio.to_thread(client.post_order, v1, OrderType.FAK)
    assert err.value.status_code == 400 and err.value.error_msg == {"error": ERR_VERSION}
    assert (await clob_view(poly_sim))["orders"] == []


async def test_tampered_signature_is_refused(poly_sim: PolySim, eoa: ClobTrader) -> None:
    _, token, ask = open_token(poly_sim)
    signed = await eoa.sign(token, "buy", D(str(ask)), D(5), TICK)
    sig = signed.body["signature"]
    flipped = sig[:-4] + ("00" if sig[-4:-2] != "00" else "11") + sig[-2:]
    bad = SignedOrder(signed.order_hash, {**signed.body, "signature": flipped})
    with pytest.raises(ClobRejected) as err:
        await eoa.post(bad)
    assert (err.value.status, err.value.message) == (400, ERR_SIGNATURE)
    more = SignedOrder(signed.order_hash, {**signed.body, "takerAmount": "6000000"})
    with pytest.raises(ClobRejected, match=re.escape(ERR_SIGNATURE)):  # signed 5, asks for 6
        await eoa.post(more)


def _flip(signature: str, at: int) -> str:
    return signature[:at] + ("0" if signature[at] != "0" else "1") + signature[at + 1 :]


async def test_deposit_wallet_order_through_the_client_fills_for_the_wallet(
    poly_sim: PolySim, poly_client: PolymarketClient
) -> None:
    """An account created after 2026-05-04 trades through its deposit wallet (type 3), as
    docs.polymarket.com/trading/deposit-wallets documents: the API key derived by the owner EOA,
    maker = signer = the wallet, the owner's ERC-7739-wrapped signature. The CLOB accepts it,
    the fill belongs to the wallet in the Data API, the cash is the wallet's."""
    owner, wallet = Account.create(), Account.create().address
    await fund(poly_sim, owner.address, wallet=wallet, kind="deposit")
    cond, token, ask = open_token(poly_sim)
    dw = ClobTrader(ClobAccount(poly_sim.url + "/clob", owner.key.hex(), signature_type=3,
                                funder=wallet))  # fmt: skip
    await dw.connect()
    assert (await clob_view(poly_sim))["balance_syncs"] == 1  # synced with signature_type 3
    assert dw.signer == owner.address and dw.funder == wallet
    signed = await dw.sign(token, "buy", D(str(ask)), D(5), TICK)
    body = signed.body
    assert body["maker"] == body["signer"] == wallet and body["signatureType"] == 3
    order_type = ORDER_TYPE.encode()  # inner signature || domain || contents || type || length
    assert len(body["signature"]) == 2 + 2 * (65 + 32 + 32 + len(order_type) + 2)
    assert body["signature"].endswith(order_type.hex() + len(order_type).to_bytes(2, "big").hex())
    # the inner signature or the trailer altered: the wallet's ERC-1271 check fails
    for at in (10, 2 + 130 + 5, len(body["signature"]) - 5):
        bad = SignedOrder(signed.order_hash, {**body, "signature": _flip(body["signature"], at)})
        with pytest.raises(ClobRejected) as err:
            await dw.post(bad)
        assert err.value.message == ERR_SIGNATURE
    answer = await dw.post(signed)
    assert answer.error is None and answer.status == "matched"
    assert answer.order_hash == signed.order_hash
    feed = await poly_client.trades_page(user=wallet.lower(), conditions=[cond])
    assert [(t.tx_hash, t.size, t.price) for t in feed.items] == [(answer.tx_hashes[0], 5.0, ask)]
    assert (
        await poly_client.trades_page(user=owner.address.lower(), conditions=[cond])
    ).items == []
    assert await dw.cash() == D(1000) - D(5) * D(str(ask))
    found = await dw.order(signed.order_hash)
    assert found is not None and found["maker_address"] == wallet.lower()
    assert len((await clob_view(poly_sim))["orders"]) == 1


async def test_deposit_wallet_rules(poly_sim: PolySim) -> None:
    """The broken variants, refused with Polymarket's texts: a plain EOA order from an account
    with a deposit wallet; a type-3 order for another owner's wallet or for a wallet the relayer
    has not deployed yet; a type-3 order with the EOA as maker and signer; a type-3 client
    without the wallet as funder refuses to build."""
    owner, wallet = Account.create(), Account.create().address
    await fund(poly_sim, owner.address, wallet=wallet, kind="deposit")
    _, token, ask = open_token(poly_sim)
    plain = ClobTrader(ClobAccount(poly_sim.url + "/clob", owner.key.hex(), signature_type=0))
    await plain.connect()
    with pytest.raises(ClobRejected) as err:
        await plain.post(await plain.sign(token, "buy", D(str(ask)), D(5), TICK))
    assert err.value.message == ERR_MAKER
    # another owner's key signing for this deposit wallet
    thief = ClobTrader(ClobAccount(poly_sim.url + "/clob", Account.create().key.hex(),
                                   signature_type=3, funder=wallet))  # fmt: skip
    await thief.connect()
    with pytest.raises(ClobRejected) as err:
        await thief.post(await thief.sign(token, "buy", D(str(ask)), D(5), TICK))
    assert err.value.message == ERR_SIGNER_KEY
    # a counterfactual wallet (not deployed through the relayer): production's reported answer
    late, late_wallet = Account.create(), Account.create().address
    await fund(poly_sim, late.address, wallet=late_wallet, kind="deposit", deployed=False)
    undeployed = ClobTrader(ClobAccount(poly_sim.url + "/clob", late.key.hex(),
                                        signature_type=3, funder=late_wallet))  # fmt: skip
    await undeployed.connect()
    with pytest.raises(ClobRejected) as err:
        await undeployed.post(await undeployed.sign(token, "buy", D(str(ask)), D(5), TICK))
    assert err.value.message == ERR_SIGNER_KEY
    for funder in (None, owner.address):
        with pytest.raises(ValueError, match="deposit wallet's address as funder"):
            ClobTrader(ClobAccount(poly_sim.url + "/clob", owner.key.hex(), signature_type=3,
                                   funder=funder))  # fmt: skip
    # what the bare client signs for type 3 without a funder: maker = signer = the EOA, which
    # has no ERC-1271 to ask
    bare = ClobClient(poly_sim.url + "/clob", chain_id=137, key=owner.key.hex(), signature_type=3)
    bare.set_api_creds(await asyncio.to_thread(bare.create_or_derive_api_key))
    own = await asyncio.to_thread(
        bare.create_order,
        OrderArgsV2(token_id=token, price=ask, size=5, side="BUY"),
        PartialCreateOrderOptions(tick_size="0.01", neg_risk=False, version=2),
    )
    assert own.maker == own.signer == owner.address and int(own.signatureType) == 3
    with pytest.raises(PolyApiException) as perr:
        await asyncio.to_thread(bare.post_order, own, OrderType.FAK)
    assert perr.value.error_msg == {"error": ERR_SIGNATURE}
    assert (await clob_view(poly_sim))["orders"] == []


async def test_fak_without_a_match_and_settlement_failure(
    poly_sim: PolySim, poly_client: PolymarketClient, eoa: ClobTrader
) -> None:
    cond, token, ask = open_token(poly_sim)
    below = D(str(ask)) - D("0.05")
    answer = await eoa.post(await eoa.sign(token, "buy", below, D(5), TICK))
    assert answer.status == "unmatched" and answer.trade_ids == ()  # Polymarket's 400: no fill
    async with httpx.AsyncClient() as c:
        await c.post(poly_sim.url + "/sim/poly/clob-faults", json={"settle_fail": 1})
    answer = await eoa.post(await eoa.sign(token, "buy", D(str(ask)), D(5), TICK))
    assert answer.status == "matched" and len(answer.trade_ids) == 1 and answer.tx_hashes == ()
    (trade,) = await eoa.trades(answer.trade_ids)
    assert trade.status == "FAILED" and trade.tx_hash is None
    feed = await poly_client.trades_page(user=eoa.funder.lower(), conditions=[cond])
    assert feed.items == []  # matched, never settled: not in the Data API
    assert await eoa.cash() == D(1000)
    assert ERR_FAK.startswith("no orders found to match with FAK order")


async def test_geoblock_check(poly_sim: PolySim) -> None:
    verdict = await geoblock(poly_sim.url + "/web/api/geoblock")
    assert not verdict.blocked and verdict.country == "IE" and verdict.access == "open"
    async with httpx.AsyncClient() as c:
        await c.post(poly_sim.url + "/sim/poly/geoblock", json={"blocked": True, "country": "US", "region": "NY"})  # fmt: skip
    verdict = await geoblock(poly_sim.url + "/web/api/geoblock")
    assert verdict.blocked and (verdict.country, verdict.region) == ("US", "NY")
    assert verdict.access == "close_only"  # the US is close-only on frontend and API


@pytest.mark.parametrize(
    ("blocked", "country", "region", "access"),
    [
        (False, "IE", "L", "open"),
        (False, "IR", None, "open"),  # the endpoint's verdict decides whether anything applies
        (True, "IR", "23", "blocked"),
        (True, "CU", None, "blocked"),
        (True, "UA", "43", "blocked"),  # Crimea (ISO 3166-2 UA-43)
        (True, "UA", "UA-14", "blocked"),  # Donetsk, region given with its country prefix
        (True, "UA", "30", "close_only"),  # Kyiv: blocked, not an OFAC region
        (True, "GB", "ENG", "close_only"),
        (True, "SG", None, "close_only"),
        (True, None, None, "close_only"),  # blocked, jurisdiction unknown: exits only
    ],
)
def test_geoblock_access(
    blocked: bool, country: str | None, region: str | None, access: str
) -> None:
    assert Geoblock(blocked, "1.2.3.4", country, region).access == access


async def test_close_only_region_refuses_opening_orders_and_takes_exits(
    poly_sim: PolySim, eoa: ClobTrader
) -> None:
    """While the geoblock answer is blocked from a close-only jurisdiction, the CLOB refuses
    buys with Polymarket's text and takes sells (closing); from an OFAC one, both."""
    _, token, ask = open_token(poly_sim)
    await eoa.post(await eoa.sign(token, "buy", D(str(ask)), D(10), TICK))
    async with httpx.AsyncClient() as c:
        await c.post(poly_sim.url + "/sim/poly/geoblock", json={"blocked": True, "country": "GB", "region": "ENG"})  # fmt: skip
    with pytest.raises(ClobRejected) as err:
        await eoa.post(await eoa.sign(token, "buy", D(str(ask)), D(5), TICK))
    assert (err.value.status, err.value.message) == (403, ERR_REGION)
    sold = await eoa.post(await eoa.sign(token, "sell", D("0.01"), D(4), TICK))
    assert sold.status == "matched" and sold.error is None
    async with httpx.AsyncClient() as c:
        await c.post(poly_sim.url + "/sim/poly/geoblock", json={"blocked": True, "country": "IR", "region": "23"})  # fmt: skip
    with pytest.raises(ClobRejected) as err:
        await eoa.post(await eoa.sign(token, "sell", D("0.01"), D(4), TICK))
    assert (err.value.status, err.value.message) == (403, ERR_REGION)
    assert [o["side"] for o in (await clob_view(poly_sim))["orders"]] == ["BUY", "SELL"]


def test_order_args_v2_still_has_token_id() -> None:
    # the adapter builds OrderArgsV2(token_id=...); a client upgrade renaming it fails here
    assert OrderArgsV2(token_id="1", price=0.5, size=5, side="BUY").token_id == "1"


async def test_neg_risk_orders_are_signed_for_the_neg_risk_exchange(
    poly_sim: PolySim, eoa: ClobTrader
) -> None:
    _, token, ask = open_token(poly_sim)
    neg = await eoa.sign(token, "buy", D(str(ask)), D(5), TICK, neg_risk=True)
    answer = await eoa.post(neg)  # the simulator finds which V2 exchange the signature is for
    assert answer.status == "matched" and answer.order_hash == neg.order_hash
