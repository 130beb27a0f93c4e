"""Which IP addresses are plainly public unicast: the only ones a webhook or an alert hook may
reach unless the operator allows private targets.

`ipaddress`'s `is_global` is not enough on Python 3.11: it passes multicast (224.0.0.1,
ff02::1), site-local fec0::/10, and IPv6 addresses that carry an IPv4 address a gateway or the
kernel delivers to (IPv4-compatible ::7f00:1, NAT64 64:ff9b::7f00:1, 6to4 2002:7f00:1::1). So
the rule is written out here, from IANA's special-purpose address registries: an IPv6 address
that carries an IPv4 address is judged by the IPv4 address inside; any other IPv6 address must
be global unicast (2000::/3) outside the special ranges listed below.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPV4_NOT_PUBLIC = tuple(
    IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 itself reaches the local host
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local: cloud metadata services live here
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the limited broadcast 255.255.255.255
    )
)

IPV6_GLOBAL_UNICAST = IPv6Network("2000::/3")
# Inside 2000::/3 but not a public host. Teredo (2001::/32) is decoded before this applies.
IPV6_NOT_PUBLIC = tuple(
    IPv6Network(block)
    for block in (
        "2001::/23",  # IETF protocol assignments: benchmarking, ORCHID, anycast services
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
# The forms that carry an IPv4 address in their last 32 bits; the NAT64 gateway or the stack
# connects to that IPv4 address. Local-use NAT64 (64:ff9b:1::/48, RFC 8215) puts the IPv4
# address where the site's prefix length says: only its /96 at the start has a known place, the
# rest of that /48 is refused (left to the 2000::/3 rule, which it is outside of).
IPV4_IN_LAST_32_BITS = (
    IPv6Network("::/96"),  # IPv4-compatible (deprecated), also :: and ::1
    IPv6Network("64:ff9b::/96"),  # NAT64, well-known prefix
    IPv6Network("64:ff9b:1::/96"),  # NAT64, local-use prefix as a /96
)


def is_public_unicast(ip: IPv4Address | IPv6Address) -> bool:
    if isinstance(ip, IPv4Address):
        return not any(ip in block for block in IPV4_NOT_PUBLIC)
    if ip.scope_id is not None:
        return False  # a zone index belongs to a link-local address only
    carried = embedded_ipv4(ip)
    if carried is not None:
        return all(is_public_unicast(inner) for inner in carried)
    if ip not in IPV6_GLOBAL_UNICAST:
        return False  # loopback, unspecified, ULA, link-local, site-local, multicast, reserved
    return not any(ip in block for block in IPV6_NOT_PUBLIC)


def embedded_ipv4(ip: IPv6Address) -> tuple[IPv4Address, ...] | None:
    """The IPv4 addresses an IPv6 address carries (and reaches through), if it is one of the
    forms that do: IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo (server and client)."""
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if any(ip in block for block in IPV4_IN_LAST_32_BITS):
        return (IPv4Address(int(ip) & 0xFFFFFFFF),)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo
    return None
