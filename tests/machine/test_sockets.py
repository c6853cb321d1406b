"""Listening sockets: /proc/net parsing, owners found through /proc/<pid>/fd, lsof output."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from proxy.machine.sockets import (
    ProcSocket,
    listening_sockets,
    parse_lsof,
    parse_proc_net,
    socket_owners,
)

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  ...\n"
LITTLE = sys.byteorder == "little"


@pytest.mark.skipif(not LITTLE, reason="sample rows are in little-endian host order")
class TestParseProcNet:
    def test_listen_rows_only(self) -> None:
        """LISTEN (0A) rows are kept with address, port, uid and inode; others are skipped."""
        text = HEADER + (
            "   0: 0100007F:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
            "   997        0 4242 1 0000000000000000 100 0 0 10 0\n"
            "   1: 0100007F:2CAA 0100007F:D431 01 00000000:00000000 00:00000000 00000000"
            "     0        0 4243 1 0000000000000000 20 4 30 10 -1\n"
            "   2: 00000000:2CAB 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
            "     0        0 4244 1 0000000000000000 100 0 0 10 0\n"
        )
        assert parse_proc_net(text) == [
            ProcSocket("127.0.0.1:11434", 11434, 997, 4242),
            ProcSocket("0.0.0.0:11435", 11435, 0, 4244),
        ]

    def test_ipv6(self) -> None:
        """tcp6 rows decode to bracketed IPv6 addresses."""
        text = HEADER + (
            "   0: 00000000000000000000000001000000:2CAA 00000000000000000000000000000000:0000"
            " 0A 00000000:00000000 00:00000000 00000000  1000        0 77 1 0 100 0 0 10 0\n"
        )
        assert parse_proc_net(text) == [ProcSocket("[::1]:11434", 11434, 1000, 77)]


class TestLiveSockets:
    def test_finds_this_process_listening(self) -> None:
        """A socket this test listens on is listed, and its owner is this process."""
        if not Path("/proc/net/tcp").exists():
            pytest.skip("needs Linux /proc")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            port = sock.getsockname()[1]
            found = listening_sockets(Path("/proc"), port)
            assert found is not None
            assert [item.address for item in found] == [f"127.0.0.1:{port}"]
            owners = socket_owners(Path("/proc"), {found[0].inode})
            assert owners == {found[0].inode: os.getpid()}

    def test_no_proc_means_unknown(self, tmp_path: Path) -> None:
        """Without /proc/net the answer is None (cannot tell), not an empty list."""
        assert listening_sockets(tmp_path, 11434) is None


class TestParseLsof:
    def test_address_pid_and_command(self) -> None:
        """`lsof -F pcn` output gives (address, pid, command) per listening socket."""
        text = "p812\ncollama\nf5\nn127.0.0.1:11434\np990\ncPython\nf7\nn*:11434\n"
        assert parse_lsof(text) == [("127.0.0.1:11434", 812, "ollama"), ("*:11434", 990, "Python")]
