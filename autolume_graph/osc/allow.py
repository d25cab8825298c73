"""Which senders the OSC server takes datagrams from: an optional list of networks (CIDRs).

Listening on 0.0.0.0 lets every machine on the LAN drive the show; a performer can admit only the
controllers' subnet ("192.168.1.0/24") or single hosts ("10.0.0.7"). IPv4 and IPv6 both work, and
an IPv4 sender seen through a dual-stack IPv6 socket (::ffff:10.0.0.7) is judged as IPv4.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AllowList:
    """Networks whose senders are admitted; `text` is how the user wrote them."""

    networks: tuple[Network, ...]
    text: str

    def admits(self, host: str) -> bool:
        """Whether a datagram from `host` (an address as the socket reports it) is taken."""
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 scope ("fe80::1%eth0")
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def parse_allow(text: str | None) -> AllowList | None:
    """"CIDR[,CIDR...]" as an AllowList; empty or None admits everyone (None). ValueError names the bad part."""
    if text is None or not text.strip():
        return None
    networks = []
    for part in (p.strip() for p in text.replace(" ", ",").split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"OSC allow-list: {exc}") from None
    return AllowList(tuple(networks), text.strip())
