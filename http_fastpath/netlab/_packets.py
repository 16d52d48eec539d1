"""The relay's packet parsing: TCP headers, SYN data, MPTCP options (see :mod:`._relay`).

Pure functions over raw IP packets as read from a TUN device (no link header): which
SYNs carry data or an MPTCP option, the RST a middlebox answers a SYN-with-data with, and
a packet with its MPTCP options overwritten by NOPs (checksum fixed).
"""

from __future__ import annotations

import array

__all__ = [
    "is_mptcp_syn",
    "is_syn_with_data",
    "strip_mptcp",
    "syn_data_reset",
    "tcp_dport",
]


def is_syn_with_data(pkt: bytes) -> bool:
    """True for a TCP SYN (without ACK) whose segment carries payload (IPv4 or IPv6)."""
    if not pkt:
        return False
    version = pkt[0] >> 4
    if version == 4 and len(pkt) >= 20 and pkt[9] == 6:
        ihl = (pkt[0] & 0x0F) * 4
        total = int.from_bytes(pkt[2:4], "big")
        tcp = ihl
    elif version == 6 and len(pkt) >= 40 and pkt[6] == 6:
        total = 40 + int.from_bytes(pkt[4:6], "big")
        tcp = 40
    else:
        return False
    if len(pkt) < tcp + 14:
        return False
    flags = pkt[tcp + 13]
    if flags & 0x12 != 0x02:  # SYN set, ACK clear
        return False
    doff = (pkt[tcp + 12] >> 4) * 4
    return total - tcp - doff > 0


def tcp_dport(pkt: bytes) -> int:
    """The TCP destination port of an IPv4/IPv6 packet (0 when it is not TCP)."""
    tcp = _tcp_offset(pkt)
    return 0 if tcp < 0 else int.from_bytes(pkt[tcp + 2 : tcp + 4], "big")


def syn_data_reset(pkt: bytes) -> bytes | None:
    """The RST|ACK a middlebox would answer an IPv4 SYN-with-data with (None: not one).

    Addresses and ports swapped, ``ack`` = the SYN's sequence number + 1 + its payload,
    checksums computed: the client's kernel takes it as a refused connection.
    """
    if not is_syn_with_data(pkt) or pkt[0] >> 4 != 4:
        return None
    ihl = (pkt[0] & 0x0F) * 4
    total = int.from_bytes(pkt[2:4], "big")
    tcp = pkt[ihl:total]
    payload = total - ihl - (tcp[12] >> 4) * 4
    ack = (int.from_bytes(tcp[4:8], "big") + 1 + payload) & 0xFFFFFFFF
    src, dst = pkt[16:20], pkt[12:16]
    hdr = bytearray(tcp[2:4] + tcp[0:2] + b"\0\0\0\0" + ack.to_bytes(4, "big"))
    hdr += bytes([5 << 4, 0x14]) + b"\0\0" + b"\0\0" + b"\0\0"  # doff 5, RST|ACK, win, csum, urg
    hdr[16:18] = array.array("H", [_checksum(src + dst + b"\0\x06\0\x14" + hdr)]).tobytes()
    ip = bytearray(b"\x45\0\0\x28\0\0\x40\0\x40\x06\0\0" + src + dst)
    ip[10:12] = array.array("H", [_checksum(ip)]).tobytes()
    return bytes(ip + hdr)


def _tcp_offset(pkt: bytes) -> int:
    """Offset of the TCP header in an IPv4/IPv6 packet, or -1 when it is not TCP."""
    if not pkt:
        return -1
    version = pkt[0] >> 4
    if version == 4 and len(pkt) >= 40 and pkt[9] == 6:
        return (pkt[0] & 0x0F) * 4
    if version == 6 and len(pkt) >= 60 and pkt[6] == 6:
        return 40
    return -1


def _mptcp_options(pkt: bytes, tcp: int) -> list[tuple[int, int]]:
    """(offset, length) of every MPTCP option (kind 30) in the TCP header at ``tcp``."""
    end = min(len(pkt), tcp + (pkt[tcp + 12] >> 4) * 4)
    found, i = [], tcp + 20
    while i < end:
        kind = pkt[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end or pkt[i + 1] < 2:
            break
        if kind == 30:
            found.append((i, pkt[i + 1]))
        i += pkt[i + 1]
    return found


def is_mptcp_syn(pkt: bytes) -> bool:
    """True for a SYN (without ACK) that carries an MPTCP option (MP_CAPABLE, MP_JOIN)."""
    tcp = _tcp_offset(pkt)
    return tcp >= 0 and pkt[tcp + 13] & 0x12 == 0x02 and bool(_mptcp_options(pkt, tcp))


def _checksum(data: bytes | bytearray) -> int:
    if len(data) % 2:
        data = bytes(data) + b"\0"
    total = sum(array.array("H", bytes(data)))  # one's complement sum is byte-order neutral
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def strip_mptcp(pkt: bytes) -> bytes:
    """The packet with its MPTCP options overwritten by NOPs and the TCP checksum fixed."""
    tcp = _tcp_offset(pkt)
    options = _mptcp_options(pkt, tcp) if tcp >= 0 else []
    if not options:
        return pkt
    buf = bytearray(pkt)
    for offset, length in options:
        buf[offset : offset + length] = b"\x01" * length
    buf[tcp + 16 : tcp + 18] = b"\0\0"
    if pkt[0] >> 4 == 4:
        segment = int.from_bytes(pkt[2:4], "big") - tcp
        pseudo = pkt[12:20] + b"\0\x06" + segment.to_bytes(2, "big")
    else:
        segment = int.from_bytes(pkt[4:6], "big")
        pseudo = pkt[8:40] + segment.to_bytes(4, "big") + b"\0\0\0\x06"
    csum = _checksum(pseudo + buf[tcp : tcp + segment])
    buf[tcp + 16 : tcp + 18] = array.array("H", [csum]).tobytes()
    return bytes(buf)
