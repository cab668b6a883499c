#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""kill -9 of vub with requests in flight loses nothing (TAP 13).

A front-end without a VM, as QEMU's vhost-user-blk with INFLIGHT_SHMFD
behaves: it keeps 16 4 KiB writes in flight (each to its own block, with
its own pattern; the image is on the host's file system, so vub's worker
pool completes them out of order), and 20 times kills vub with SIGKILL
(after a random time, aimed at the moment the region marks a head in
flight), starts a new one on the same socket and image, reconnects
with the same guest memory and the inflight region of GET_INFLIGHT_FD
(SET_INFLIGHT_FD), and restarts the ring at the used index. Passes when
every request completes exactly once (no used entry for a head not in
flight: QEMU's "id N is not a head!"), none is lost (all complete within
10 s of the last restart), every status is OK and every block holds its
request's pattern; and some kills landed with requests in flight (the
region showed them). The negative control runs the same without the
inflight region (QEMU's behaviour with a back-end that does not offer it):
it must lose or repeat requests (up to 3 rounds: it breaks only when a kill
lands between an out-of-order completion and the earlier request's).
Usage: vu_crash.py [KILLS]
"""
import mmap
import os
import random
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time

from vu_lib import (DESC_F_NEXT, DESC_F_WRITE, F_PROTOCOL_FEATURES,
                    F_VERSION_1, GET_FEATURES, GET_INFLIGHT_FD,
                    GET_PROTOCOL_FEATURES, PF_INFLIGHT, PF_REPLY_ACK,
                    SET_FEATURES, SET_INFLIGHT_FD, SET_MEM_TABLE, SET_OWNER,
                    SET_PROTOCOL_FEATURES, SET_VRING_ADDR, SET_VRING_BASE,
                    SET_VRING_CALL, SET_VRING_ENABLE, SET_VRING_KICK,
                    SET_VRING_NUM, Closed, Conn, Nack, Tap, diag, find_vub)

MEM = 1 << 20
UVA = 0x7f3400000000
QSIZE = 64
SLOTS = 16
DESC, AVAIL, USED = 0x0000, 0x1000, 0x2000
HDR, STATUS, DATA = 0x3000, 0x3400, 0x10000
BLOCK = 4096
NBLOCKS = 4096          # the 16 MiB image; request i writes block i % NBLOCKS
T_OUT = 1
TAP = Tap()
tap = TAP


def pattern(i):
    return struct.pack("<Q", 0x5642000000000000 | i) * (BLOCK // 8)


class Run:
    def __init__(self, vub_bin, tmp, inflight):
        self.bin, self.inflight = vub_bin, inflight
        self.sock_path = os.path.join(tmp, "crash.sock")
        self.img = os.path.join(tmp, "crash.img")
        self.logpath = os.path.join(tmp, "crash.log")
        with open(self.img, "wb") as f:
            f.truncate(16 << 20)
        self.log = open(self.logpath, "ab")
        self.memfd = os.memfd_create("vu-crash", 0)
        os.ftruncate(self.memfd, MEM)
        self.mem = mmap.mmap(self.memfd, MEM)
        self.ifl_fd, self.ifl, self.ifl_info = None, None, None
        self.kick = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.call = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.avail_idx = 0
        self.used_seen = 0
        self.slot_req = [None] * SLOTS      # request in each slot
        self.next_req = 0
        self.done = {}                      # request -> completions
        self.bogus = []                     # used ids of free slots
        self.bad_status = []
        self.s = None
        self.p = None

    # ---- the back-end
    def start_vub(self):
        self.p = subprocess.Popen([self.bin, "--socket", self.sock_path,
                                   "--file", self.img],
                                  stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.s = Conn(self.sock_path, 5)
                return
            except OSError:
                if self.p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("vub did not start")
                time.sleep(0.02)

    def kill_vub(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        self.s.close()

    def session(self):
        """QEMU's bring-up; after a crash the ring restarts at used->idx"""
        self.s.get_u64(GET_FEATURES)
        pf = self.s.get_u64(GET_PROTOCOL_FEATURES)
        want = 1 << PF_REPLY_ACK
        if self.inflight:
            if not pf & (1 << PF_INFLIGHT):
                raise Closed("INFLIGHT_SHMFD not offered")
            want |= 1 << PF_INFLIGHT
        self.s.send(SET_PROTOCOL_FEATURES, struct.pack("<Q", want))
        self.s.ack(SET_FEATURES, struct.pack("<Q", (1 << F_VERSION_1) |
                                           (1 << F_PROTOCOL_FEATURES)))
        self.s.ack(SET_OWNER)
        self.s.ack(SET_MEM_TABLE, struct.pack("<II", 1, 0) +
                 struct.pack("<QQQQ", 0, MEM, UVA, 0), [self.memfd])
        if self.inflight:
            if self.ifl_fd is None:
                self.s.send(GET_INFLIGHT_FD, struct.pack("<QQHHI", 0, 0, 1, QSIZE, 0))
                payload, fds = self.s.reply_fds(GET_INFLIGHT_FD)
                if len(fds) != 1:
                    raise Closed("GET_INFLIGHT_FD without an fd")
                self.ifl_fd, self.ifl_info = fds[0], payload
                size, off = struct.unpack_from("<QQ", payload)
                self.ifl = mmap.mmap(self.ifl_fd, size, offset=off)
            self.s.ack(SET_INFLIGHT_FD, self.ifl_info, [self.ifl_fd])
        base = self.used_idx()
        self.s.ack(SET_VRING_NUM, struct.pack("<II", 0, QSIZE))
        self.s.ack(SET_VRING_BASE, struct.pack("<II", 0, base))
        self.s.ack(SET_VRING_ADDR, struct.pack("<IIQQQQ", 0, 0, UVA + DESC,
                                             UVA + USED, UVA + AVAIL, 0))
        self.s.ack(SET_VRING_CALL, struct.pack("<Q", 0), [self.call])
        self.s.ack(SET_VRING_KICK, struct.pack("<Q", 0), [self.kick])
        self.s.ack(SET_VRING_ENABLE, struct.pack("<II", 0, 1))

    # ---- the ring
    def used_idx(self):
        return struct.unpack_from("<H", self.mem, USED + 2)[0]

    def in_flight_marked(self):
        """heads the inflight region marks in flight (queue 0)"""
        if self.ifl is None:
            return 0
        return sum(self.ifl[16 + 16 * i] == 1 for i in range(QSIZE))

    def submit(self, total):
        n = 0
        for slot in range(SLOTS):
            if self.slot_req[slot] is not None or self.next_req >= total:
                continue
            i = self.next_req
            self.next_req += 1
            self.slot_req[slot] = i
            m, head = self.mem, slot * 4
            hdr, data, st = HDR + 16 * slot, DATA + BLOCK * slot, STATUS + slot
            struct.pack_into("<IIQ", m, hdr, T_OUT, 0, (i % NBLOCKS) * (BLOCK // 512))
            m[data:data + BLOCK] = pattern(i)
            m[st] = 0xff
            struct.pack_into("<QIHH", m, DESC + 16 * head, hdr, 16, DESC_F_NEXT, head + 1)
            struct.pack_into("<QIHH", m, DESC + 16 * (head + 1), data, BLOCK,
                             DESC_F_NEXT, head + 2)
            struct.pack_into("<QIHH", m, DESC + 16 * (head + 2), st, 1, DESC_F_WRITE, 0)
            struct.pack_into("<H", m, AVAIL + 4 + 2 * (self.avail_idx % QSIZE), head)
            self.avail_idx = (self.avail_idx + 1) & 0xffff
            struct.pack_into("<H", m, AVAIL + 2, self.avail_idx)
            n += 1
        if n:
            os.eventfd_write(self.kick, 1)

    def harvest(self):
        u = self.used_idx()
        while self.used_seen != u:
            head = struct.unpack_from("<I", self.mem, USED + 4 + 8 * (self.used_seen % QSIZE))[0]
            self.used_seen = (self.used_seen + 1) & 0xffff
            slot = head // 4
            if head % 4 or slot >= SLOTS or self.slot_req[slot] is None:
                self.bogus.append(head)
                continue
            i = self.slot_req[slot]
            if self.mem[STATUS + slot] != 0:
                self.bad_status.append((i, self.mem[STATUS + slot]))
            self.done[i] = self.done.get(i, 0) + 1
            self.slot_req[slot] = None

    def pending(self):
        return sum(r is not None for r in self.slot_req)

    def mid_batch(self, u0, want):
        """the region marks a head in flight or, without a region, a
        request is used while an earlier one is not (what a restart at
        the used index gets wrong)"""
        if self.ifl is not None:
            return self.in_flight_marked() > 0
        d = (self.used_idx() - u0) & 0xffff
        if not d or d >= want:
            return False
        used = set()
        for k in range(d):
            head = struct.unpack_from("<I", self.mem, USED + 4 + 8 * ((u0 + k) % QSIZE))[0]
            if head % 4 == 0 and head // 4 < SLOTS:
                used.add(head // 4)
        ids = [(self.slot_req[sl], sl in used) for sl in range(SLOTS)
               if self.slot_req[sl] is not None]
        return max((i for i, u in ids if u), default=-1) > \
            min((i for i, u in ids if not u), default=1 << 62)

    def stopped(self):
        """every thread of vub is stopped (a group stop is not atomic)"""
        d = f"/proc/{self.p.pid}/task"
        try:
            for t in os.listdir(d):
                with open(f"{d}/{t}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "T":
                        return False
        except OSError:
            pass
        return True

    def aim(self, total):
        """up to 0.5 s of fresh batches: catch vub mid-batch and freeze it
        there (SIGSTOP, then check again), so that the SIGKILL lands in
        that state and not microseconds later, when its workers have
        finished the batch"""
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            self.harvest()
            self.submit(total)
            u0, want = self.used_idx(), self.pending()
            batch_end = time.monotonic() + 0.02
            while time.monotonic() < batch_end:
                if not self.mid_batch(u0, want):
                    continue
                self.p.send_signal(signal.SIGSTOP)
                t = time.monotonic() + 0.05
                while not self.stopped() and time.monotonic() < t:
                    pass
                if self.mid_batch(u0, want):
                    return
                self.p.send_signal(signal.SIGCONT)
                break

    def go(self, kills, total):
        """returns (kills landing with marked heads, max marked)"""
        landed, most = 0, 0
        self.start_vub()
        self.session()
        for _ in range(kills):
            end = time.monotonic() + random.uniform(0.2, 0.6)
            while time.monotonic() < end:
                self.submit(total)
                select.select([self.call], [], [], 0.01)
                try:
                    os.eventfd_read(self.call)
                except BlockingIOError:
                    pass
                self.harvest()
            # aim the kill at requests in flight: on a quiet host vub
            # completes 16 writes in microseconds, and kills at random
            # moments found nothing in flight in 20 of 20 CI kills
            self.aim(total)
            self.kill_vub()
            self.harvest()
            marked = self.in_flight_marked()
            landed += marked > 0
            most = max(most, marked)
            time.sleep(random.uniform(0.0, 0.5))
            self.start_vub()
            self.session()
        # no new requests: what is in flight must complete
        end = time.monotonic() + 10
        while self.pending() and time.monotonic() < end:
            select.select([self.call], [], [], 0.05)
            self.harvest()
        return landed, most

    def verify(self, total):
        lost = [i for i in range(self.next_req) if i not in self.done]
        twice = [i for i, n in self.done.items() if n > 1]
        wrong = []
        last = {}
        for i in self.done:
            last[i % NBLOCKS] = max(i, last.get(i % NBLOCKS, -1))
        with open(self.img, "rb") as f:
            for b, i in sorted(last.items()):
                f.seek(b * BLOCK)
                if f.read(BLOCK) != pattern(i):
                    wrong.append(i)
        return lost, twice, wrong

    def close(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self.s:
            self.s.close()
        self.log.close()


def main():
    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print("TAP version 13")
    vub = find_vub()
    if not vub:
        print("1..0 # SKIP vub not built (make tools)")
        return 4
    print("1..3", flush=True)
    total = 1 << 40         # the kills end the run
    rounds = 0
    # the control breaks only when a kill lands between an out-of-order
    # completion and the earlier request's: up to 3 rounds to see it
    for inflight in (True, False, False, False):
        if not inflight and TAP.n == 3:
            break
        with tempfile.TemporaryDirectory(prefix="vu_crash.") as tmp:
            r = Run(vub, tmp, inflight)
            try:
                landed, most = r.go(kills, total)
                lost, twice, wrong = r.verify(total)
                err = None
            except (Closed, Nack, RuntimeError) as e:
                err = str(e)
            finally:
                r.close()
            with open(r.logpath, errors="replace") as f:
                log = f.read()
        if err:
            tap(False, f"{'with' if inflight else 'without'} the inflight region: {err}")
            diag(log[-3000:])
            if inflight:
                tap(False, "kills landed with requests in flight")
            continue
        broken = (f"{len(lost)} lost, {len(r.bogus)} used ids not in flight "
                  f"(\"not a head\"), {len(twice)} completed twice, "
                  f"{len(r.bad_status)} bad status, {len(wrong)} blocks wrong")
        clean = not (lost or r.bogus or twice or r.bad_status or wrong)
        resub = log.count("resubmitting")
        if inflight:
            tap(clean, f"{kills} x kill -9 + restart with the inflight region: "
                f"{r.next_req} writes, {broken}; vub resubmitted after {resub} restarts")
            tap(landed > 0, f"kills landed with requests in flight: {landed} of {kills} "
                f"(at most {most} heads marked in the region)")
        elif not clean or rounds == 2:
            tap(not clean, f"negative control, {kills} x kill -9 + restart without "
                f"the inflight region (the ring restarts at the used index; round "
                f"{rounds + 1}): requests lost or repeated: {broken}")
        else:
            diag(f"negative control round {rounds + 1}: nothing broke ({broken})")
            rounds += 1
    return TAP.summary(3)


if __name__ == "__main__":
    sys.exit(main())
