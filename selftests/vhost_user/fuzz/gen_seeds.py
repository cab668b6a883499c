#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Write the seed corpus of vu-fuzz-msg and vu-fuzz-ring (tools/vhost-user/
vu_fuzz.c) into msg/ and ring/ next to this script: QEMU 7.2's message
sequences and well-formed virtio-blk requests, for the fuzzer to mutate."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
V, NEED = 0x1, 0x8
UVA = 0x7f0000000000
MEM = 64 << 10


def msg(req, payload=b"", flags=V):
    return struct.pack("<III", req, flags, len(payload)) + payload


def u64(v):
    return struct.pack("<Q", v)


def state(i, n):
    return struct.pack("<II", i, n)


def addr(i, flags=0, base=UVA, log=0):
    return struct.pack("<IIQQQQ", i, flags, base, base + 0x2000 + 0x400 * i,
                       base + 0x1000 + 0x400 * i, log)


def region(gpa=0, size=MEM, uva=UVA, off=0):
    return struct.pack("<QQQQ", gpa, size, uva, off)


FEAT = (1 << 32) | (1 << 30) | (1 << 29) | (1 << 28)
PFEAT = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 9) | (1 << 15) | (1 << 13) | (1 << 12)

INIT = (msg(1) + msg(15) + msg(16, u64(PFEAT)) + msg(17) + msg(36) + msg(3) +
        msg(2, u64(FEAT), V | NEED))


def ring_up(q=0, num=8):
    return (msg(8, state(q, num), V | NEED) + msg(10, state(q, 0), V | NEED) +
            msg(9, addr(q), V | NEED) + msg(13, u64(q), V | NEED) +
            msg(12, u64(q), V | NEED) + msg(18, state(q, 1), V | NEED))


MSG = {
    "init": INIT,
    "start-mem-table": INIT + msg(5, struct.pack("<II", 1, 0) + region(), V | NEED) +
    ring_up(0) + ring_up(1) + msg(11, state(0, 0)) + msg(11, state(1, 0)),
    "start-add-mem-reg": INIT + msg(37, u64(0) + region(), V | NEED) + ring_up(0) +
    msg(38, u64(0) + region()) + msg(11, state(0, 0)),
    "migrate": INIT + msg(5, struct.pack("<II", 1, 0) + region()) + ring_up(0) +
    msg(6, struct.pack("<QQ", 4096, 0), V | NEED) +
    msg(2, u64(FEAT | 1 << 26), V | NEED) + msg(9, addr(0, 1, log=0x2000)) +
    msg(2, u64(FEAT)) + msg(9, addr(0)) + msg(18, state(0, 0)) + msg(11, state(0, 0)),
    "inflight": INIT + msg(31, struct.pack("<QQHHI", 0, 0, 2, 8, 0)) +
    msg(32, struct.pack("<QQHHI", 2 * 192, 0, 2, 8, 0), V | NEED) +
    msg(5, struct.pack("<II", 1, 0) + region()) + ring_up(0) + msg(11, state(0, 0)),
    "config-reset": INIT + msg(24, struct.pack("<III", 0, 60, 0) + bytes(60)) +
    msg(25, struct.pack("<III", 0, 1, 0) + b"\0", V | NEED) + msg(4) + msg(34) +
    msg(12, u64(0x100)),
}

HDR, BUF, STATUS, IND = 0x800, 0x1000, 0xf00, 0xa00
AVAIL, QSTRIDE = 0x100, 0x400


def desc(a, n, f, nxt):
    return struct.pack("<QIHH", a, n, f, nxt)


def ring_input(choice, reqs, qlog=3, trunc=0, indirect=False, ifl=False):
    """[choice][qlog][base lo][base hi][trunc] + guest memory"""
    mem = bytearray(MEM)
    num = 1 << qlog
    for i, (t, sector, dlen, wr) in enumerate(reqs):
        d = i * 3
        hdr, buf, st = HDR + 16 * i, BUF + 0x200 * i, STATUS + i
        struct.pack_into("<IIQ", mem, hdr, t, 0, sector)
        chain = [desc(hdr, 16, 1, d + 1), desc(buf, dlen, 1 | (2 if wr else 0), d + 2),
                 desc(st, 1, 2, 0)]
        if indirect:
            for k, c in enumerate(chain):
                mem[IND + 16 * k:IND + 16 * k + 16] = c
            mem[16 * d:16 * d + 16] = desc(IND, 48, 4, 0)
        else:
            for k, c in enumerate(chain):
                mem[16 * (d + k):16 * (d + k) + 16] = c
        for q in range(2):
            struct.pack_into("<H", mem, AVAIL + q * QSTRIDE + 4 + 2 * (i % num), d)
    for q in range(2):
        struct.pack_into("<H", mem, AVAIL + q * QSTRIDE + 2, len(reqs))
    # trailing zeros are what the harness fills in anyway
    end = BUF + 0x200 * len(reqs)
    if ifl:
        # a region a crashed back-end left: head 0 of each queue in flight
        # (the inflight region is input bytes from guest offset 0x2000)
        qsz = (16 * num + 2 + 63) & ~63
        for q in range(2):
            o = 0x2000 + q * qsz
            struct.pack_into("<QHHHH", mem, o, 0, 1, num, 0, 0)
            struct.pack_into("<B5xHQ", mem, o + 16, 1, 0, 7)
        end = 0x2000 + 2 * qsz
    return bytes([choice, qlog, 0, 0, trunc]) + bytes(mem[:end])


RING = {
    "get-id": ring_input(0, [(8, 0, 20, True)]),
    "read-write": ring_input(1, [(0, 0, 512, True), (1, 8, 512, False), (4, 0, 0, False)], qlog=4),
    "indirect-event-idx": ring_input(3, [(0, 0, 512, True)], indirect=True),
    "log-all": ring_input(5, [(0, 0, 512, True), (8, 0, 20, True)]),
    "inflight": ring_input(9, [(8, 0, 20, True)]),
    "inflight-resume": ring_input(9, [(8, 0, 20, True)], ifl=True),
    "truncated": ring_input(1, [(0, 0, 512, True)], trunc=64),
}

for sub, seeds in (("msg", MSG), ("ring", RING)):
    d = os.path.join(HERE, sub)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
