"""poly_trader tests run against the simulator's Polymarket endpoints (tests/poly fixtures)."""

from tests.poly.conftest import poly_client, poly_sim  # noqa: F401 (fixtures)
