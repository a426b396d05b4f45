"""Which TCP sockets a process and everything it started listen on, read from /proc (Linux)."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

from tests.processes import process_tree

_LISTEN = "0A"


def listening_sockets(root: int) -> list[tuple[str, int, str]]:
    """(address, port, process name) of every listening TCP socket held by `root`'s process tree."""
    owners = {}
    for pid in process_tree(root):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[int(target[8:-1])] = name
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == _LISTEN and int(fields[9]) in owners:
                found.add((*_address(fields[1], family), owners[int(fields[9])]))
    return sorted(found)


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.0.0.1, what a dual-stack socket shows)."""
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def _address(hex_address: str, family: int) -> tuple[str, int]:
    """/proc/net/tcp{,6} write an address as 32-bit words in hex, each in the machine's byte order."""
    ip_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(ip_hex)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, raw), int(port_hex, 16)
