"""Which addresses are plainly public unicast (pool/kit/ip_ranges.py): every address an outside
audit got accepted as a webhook target, the ranges around them, and public ones that must
still pass."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from pool.kit.ip_ranges import embedded_ipv4, is_public_unicast

# Teredo: 2001:0:<server>:<flags>:<port>:<client XOR ffffffff>. Server 65.54.227.120.
TEREDO_CLIENT_8_8_8_8 = "2001:0:4136:e378:8000:63bf:f7f7:f7f7"
TEREDO_CLIENT_10_0_0_1 = "2001:0:4136:e378:8000:63bf:f5ff:fffe"
TEREDO_SERVER_10_0_0_1 = "2001:0:a00:1:8000:63bf:f7f7:f7f7"

AUDIT = [
    "::127.0.0.1",  # IPv4-compatible loopback
    "::7f00:1",
    "64:ff9b::7f00:1",  # NAT64 of loopback
    "64:ff9b::a9fe:a9fe",  # NAT64 of the cloud metadata address
    "2002:7f00:1::1",  # 6to4 of loopback
    "fec0::1",  # site-local
    "224.0.0.1",  # multicast
    "ff02::1",
]
NOT_PUBLIC = [
    *AUDIT,
    "0.0.0.0",  # noqa: S104 - an address judged, not bound
    "10.1.2.3",
    "100.64.0.1",  # shared (carrier-grade NAT)
    "127.0.0.1",
    "169.254.169.254",
    "172.16.0.1",
    "192.0.0.8",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:0:808:808",  # IPv4-translated (SIIT): not reachable as a public host
    "64:ff9b:1::a00:1",  # local-use NAT64 of 10.0.0.1
    "64:ff9b:1:abcd::808:808",  # local-use NAT64 with an unknown prefix length
    "100::1",  # discard-only
    "2001:2::1",  # benchmarking
    "2001:db8::1",  # documentation
    "3fff::1",
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    TEREDO_CLIENT_10_0_0_1,
    TEREDO_SERVER_10_0_0_1,
    "fc00::1",  # unique local
    "fd12:3456::1",
    "fe80::1",  # link-local
    "fe80::1%eth0",
    "ff0e::1",  # global-scope multicast is still multicast
    "4000::1",  # outside 2000::/3: unassigned
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.128.0.1",  # just past the shared range
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "::808:808",  # IPv4-compatible form of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "64:ff9b:1::808:808",  # local-use NAT64 as a /96
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    TEREDO_CLIENT_8_8_8_8,
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_addresses_that_are_not_plainly_public_unicast_are_refused(address: str) -> None:
    assert not is_public_unicast(ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_unicast_addresses_pass(address: str) -> None:
    assert is_public_unicast(ip_address(address))


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("::ffff:127.0.0.1", ["127.0.0.1"]),
        ("::7f00:1", ["127.0.0.1"]),
        ("64:ff9b::a9fe:a9fe", ["169.254.169.254"]),
        ("2002:7f00:1::1", ["127.0.0.1"]),
        (TEREDO_CLIENT_10_0_0_1, ["65.54.227.120", "10.0.0.1"]),
        ("2001:4860:4860::8888", None),
    ],
)
def test_the_ipv4_address_inside_is_what_is_judged(address: str, inside: list[str] | None) -> None:
    found = embedded_ipv4(ip_address(address))  # type: ignore[arg-type]
    assert (None if found is None else [str(ip) for ip in found]) == inside
