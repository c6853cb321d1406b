"""This machine's addresses: its interfaces, as the Host and Origin checks see them."""

from __future__ import annotations

from proxy.machine.addresses import local_addresses


class TestAddresses:
    def test_loopback_is_one_of_them(self) -> None:
        """The interfaces' addresses include 127.0.0.1, without IPv6 zone suffixes."""
        found = local_addresses()
        assert "127.0.0.1" in found
        assert not [a for a in found if "%" in a]
