"""A real anvil node with test USDT and USDC, shared by the chain tests; each test gets a
snapshot of it and leaves no trace."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from scripts.devnet import anvil
from scripts.devnet.anvil import Anvil

FUNDS = 10**15  # a billion tokens of 6 decimals


@dataclass(frozen=True)
class Devnet:
    url: str
    usdt: str
    usdc: str
    sender: str


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[Anvil]:
    with Anvil() as node:
        yield node


@pytest.fixture(scope="session")
def devnet_tokens(anvil_node: Anvil) -> tuple[str, str, str]:
    url = anvil_node.url
    usdt = anvil.deploy_token(url, name="Tether USD", symbol="USDT", decimals=6)
    usdc = anvil.deploy_token(url, name="USD Coin", symbol="USDC", decimals=6)
    sender = anvil.accounts(url)[0]
    for token in (usdt, usdc):
        anvil.mint(url, token, sender, FUNDS)
    return usdt, usdc, sender


@pytest.fixture
def devnet(anvil_node: Anvil, devnet_tokens: tuple[str, str, str]) -> Iterator[Devnet]:
    mark = anvil.snapshot(anvil_node.url)
    usdt, usdc, sender = devnet_tokens
    yield Devnet(anvil_node.url, usdt, usdc, sender)
    anvil.revert(anvil_node.url, mark)
