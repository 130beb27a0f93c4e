"""The Python client of PayIn's guide, unchanged but for its base URL and key."""

import hashlib
import hmac
from typing import Any  # noqa: UP035 - PayIn's code, kept as written

import pytest
import requests

from tests.fixtures.helpers import load_pool, make_key
from tests.fixtures.server import running_server

pytestmark = pytest.mark.server


# ---- verbatim from PayIn's guide (its Python section) ----
class PayInClient:
    def __init__(self, api_key: str, base_url: str = "https://testnet.payin.com/api/v1"):
        self.api_key = api_key
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers.update(
            {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        )

    def create_order(
        self, order_reference: str, amount: str, currency: str, chain_id: str, **kwargs
    ) -> dict[str, Any]:
        """创建新的支付订单"""
        payload = {
            "orderReference": order_reference,
            "amount": amount,
            "currency": currency,
            "chainId": chain_id,
            **kwargs,
        }
        response = self.session.post(f"{self.base_url}/orders", json=payload)
        response.raise_for_status()
        return response.json()["data"]

    def get_order(self, order_id: str) -> dict[str, Any]:
        """获取订单详情"""
        response = self.session.get(f"{self.base_url}/orders/{order_id}")
        response.raise_for_status()
        return response.json()["data"]

    def bind_address(self, deposit_reference: str, protocol: str, **kwargs) -> dict[str, Any]:
        """为用户绑定充值地址"""
        payload = {"depositReference": deposit_reference, "protocol": protocol, **kwargs}
        response = self.session.post(f"{self.base_url}/deposits/bind", json=payload)
        response.raise_for_status()
        return response.json()["data"]

    @staticmethod
    def verify_webhook(payload: bytes, signature: str, secret: str) -> bool:
        """验证 webhook 签名"""
        expected_signature = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature, expected_signature)


# ---- end of PayIn's code ----


async def test_seed_client_binds_and_looks_up_a_reference(database_url, db, no_proxy_env) -> None:
    await load_pool(db, "evm", 2)
    key = await make_key(db, scopes=None)
    with running_server(database_url) as server:
        payin = PayInClient(api_key=key, base_url=f"{server.base_url}/api/v1")
        bound = payin.bind_address("user_456", "evm", metadata={"playerId": 456})
        assert bound["address"].startswith("0x") and bound["protocol"] == "evm"
        assert bound["depositReference"] == "user_456" and "monitoredChains" in bound
        assert payin.bind_address("user_456", "evm") == bound  # idempotent, as the guide implies

        # PayIn's guide documents GET /deposits/references/:depositReference; its client's session
        # carries the auth, exactly as a PayIn user would call it.
        looked_up = payin.session.get(f"{payin.base_url}/deposits/references/user_456")
        looked_up.raise_for_status()
        reference = looked_up.json()["data"]
        assert reference["address"] == bound["address"]
        assert (reference["totalDeposits"], reference["totalAmount"]) == (0, "0")
        assert reference["boundAt"].endswith("Z")

        with pytest.raises(requests.HTTPError) as exhausted:
            payin.bind_address("user_789", "tron")
        assert exhausted.value.response.status_code == 503
        assert exhausted.value.response.json()["error"] == "InsufficientAddresses"
        assert server.terminate() == 0
