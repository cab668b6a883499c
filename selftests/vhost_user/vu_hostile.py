#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Hostile front-ends must not stall vub for the others (TAP 13).

vub serves up to 16 front-ends from one thread. Each case starts a fresh
vub, lets a hostile front-end do its worst and checks that a second,
well-behaved front-end is still served (its requests answered and a ring
request completed, each within 5 s), that vub closes the hostile
connection or refuses its message where it should, names the cause in its
log, and exits on SIGTERM within 5 s:

  call-saturated  the call eventfd's counter at 0xfffffffffffffffe, then a
                  request: the call cannot be written (EAGAIN, the guest is
                  woken anyway); the call and err fds must be made
                  non-blocking, and the hostile front-end itself stays served
  unread-replies  GET_FEATURES sent without reading a reply until its socket
                  is full: vub must not wait for it, and drops it 2 s later
  slowloris       a message one byte every 1.5 s: vub must not wait for the
                  rest, and drops it 2 s after its first byte
  ring-fds        kick/call/err fds that are not eventfds (a pipe at EOF as
                  the kick made vub spin) or a semaphore-mode kick eventfd
                  are refused
  regions         a memory region whose userspace_addr or mmap_offset is
                  not page-aligned is refused (the rings would be misaligned);
                  an aligned non-zero mmap_offset works
  truncated       the front-end shrinks its memfd after SET_MEM_TABLE, then
                  kicks: vub's next access to the lost pages is a SIGBUS,
                  which killed vub and everyone with it. Twice: the whole
                  memfd (the ring access faults, main thread) and only the
                  page of a FLUSH's status byte (a worker faults). Only
                  that connection may go; the other front-end must keep
                  getting replies (median within 100 ms, each within 5 s)

The deadlines are generous (a loaded 2-CPU host): what is tested is that
the other front-end is served at all while the hostile one is stuck, not
how fast. vub must exit on SIGTERM within 1 s after every case. Usage: vu_hostile.py [CASE...]
"""
import fcntl
import mmap
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from vu_lib import (DESC_F_NEXT, DESC_F_WRITE, F_PROTOCOL_FEATURES,
                    F_VERSION_1, GET_FEATURES, GET_PROTOCOL_FEATURES,
                    PF_REPLY_ACK, SET_FEATURES, SET_MEM_TABLE, SET_OWNER,
                    SET_PROTOCOL_FEATURES, SET_VRING_ADDR, SET_VRING_BASE,
                    SET_VRING_CALL, SET_VRING_ENABLE, SET_VRING_ERR,
                    SET_VRING_KICK, SET_VRING_NUM, NAMES, VERSION, Closed,
                    Conn, Nack, Tap, diag, find_vub)

# the well-behaved front-end: every answer within this many seconds
SERVED_S = 5.0
# vub's deadline for a message or a reply is 2 s; allow for a loaded host
DROP_S = 15.0
# SIGTERM to exit
STOP_S = 1.0
# truncated: the median reply to the other front-end
QUICK_S = 0.1

EVENTFD_MAX = 0xfffffffffffffffe
MEM_SIZE = 1 << 20
UVA = 0x7f1200000000          # the front-end's "virtual address" of gpa 0
QSIZE = 8
DESC, AVAIL, USED = 0x0000, 0x1000, 0x2000
HDR, IDBUF, STATUS = 0x3000, 0x3100, 0x3200
VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID = 4, 8
# the truncated case's FLUSH: its status byte alone on a page of its own
FLUSH_STATUS = 0x5000
TAP = Tap()
tap = TAP


class Vub:
    def __init__(self, binary, tmp, name):
        self.sock = os.path.join(tmp, f"{name}.sock")
        self.logpath = os.path.join(tmp, f"{name}.log")
        img = os.path.join(tmp, f"{name}.img")
        with open(img, "wb") as f:
            f.truncate(16 << 20)
        self.log = open(self.logpath, "wb")
        self.p = subprocess.Popen([binary, "--socket", self.sock, "--file", img],
                                  stdout=self.log, stderr=subprocess.STDOUT)
        # the ready line, printed after listen(): the socket file exists
        # from bind() on, when a connect is still refused
        deadline = time.monotonic() + 30
        while "vub: serving" not in self.text():
            if self.p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vub did not start: {self.text()}")
            time.sleep(0.05)

    def text(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def wait_log(self, what, timeout):
        deadline = time.monotonic() + timeout
        while what not in self.text():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def cpu_s(self):
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout=5.0):
        """SIGTERM; True if vub exited cleanly within @timeout s"""
        if self.p.poll() is not None:
            return False
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            rc = None
        self.log.close()
        return rc == 0

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class FrontEnd(Conn):
    """A minimal vhost-user-blk front-end: one ring, one memfd region."""

    def __init__(self, path, timeout=SERVED_S):
        super().__init__(path, timeout)
        self.memfd = os.memfd_create("vu-hostile", 0)
        os.ftruncate(self.memfd, MEM_SIZE)
        self.mem = mmap.mmap(self.memfd, MEM_SIZE)
        self.off = 0            # memfd offset of gpa 0 (the region's mmap_offset)
        self.avail_idx = 0
        self.kick = self.call = None

    def close(self):
        super().close()
        self.mem.close()
        os.close(self.memfd)
        for fd in (self.kick, self.call):
            if fd is not None:
                os.close(fd)

    def closed_within(self, timeout):
        """True once the back-end has closed the connection (replies read)"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.s], [], [], 0.2)
            if not r:
                continue
            try:
                if not self.s.recv(65536, socket.MSG_DONTWAIT):
                    return True
            except BlockingIOError:
                pass
            except OSError:
                return True
        return False

    def setup(self, kick=None, call=None, err=None, uva=UVA, mmap_offset=0,
              ring_uva=None):
        """QEMU's bring-up of ring 0 with REPLY_ACK on every SET_*; the
        rings at @ring_uva (default: the region's @uva) + DESC/AVAIL/USED"""
        ring_uva = uva if ring_uva is None else ring_uva
        self.kick = os.eventfd(0, os.EFD_CLOEXEC) if kick is None else kick
        self.call = os.eventfd(0, os.EFD_CLOEXEC) if call is None else call
        self.off = mmap_offset
        self.get_u64(GET_FEATURES)
        pf = self.get_u64(GET_PROTOCOL_FEATURES)
        if not pf & (1 << PF_REPLY_ACK):
            raise Closed("REPLY_ACK not offered")
        self.send(SET_PROTOCOL_FEATURES, struct.pack("<Q", 1 << PF_REPLY_ACK))
        self.ack(SET_FEATURES, struct.pack("<Q", (1 << F_VERSION_1) |
                                           (1 << F_PROTOCOL_FEATURES)))
        self.ack(SET_OWNER)
        region = struct.pack("<QQQQ", 0, MEM_SIZE - mmap_offset, uva, mmap_offset)
        self.ack(SET_MEM_TABLE, struct.pack("<II", 1, 0) + region, [self.memfd])
        self.ack(SET_VRING_NUM, struct.pack("<II", 0, QSIZE))
        self.ack(SET_VRING_BASE, struct.pack("<II", 0, 0))
        self.ack(SET_VRING_ADDR, struct.pack("<IIQQQQ", 0, 0, ring_uva + DESC,
                                             ring_uva + USED, ring_uva + AVAIL, 0))
        self.ack(SET_VRING_CALL, struct.pack("<Q", 0), [self.call])
        if err is not None:
            self.ack(SET_VRING_ERR, struct.pack("<Q", 0), [err])
        self.ack(SET_VRING_KICK, struct.pack("<Q", 0), [self.kick])
        self.ack(SET_VRING_ENABLE, struct.pack("<II", 0, 1))

    def used_idx(self):
        return struct.unpack_from("<H", self.mem, self.off + USED + 2)[0]

    def submit(self, kick=True):
        """make a GET_ID request available and kick"""
        m, o = self.mem, self.off
        struct.pack_into("<IIQ", m, o + HDR, VIRTIO_BLK_T_GET_ID, 0, 0)
        m[o + IDBUF:o + IDBUF + 20] = bytes(20)
        m[o + STATUS] = 0xff
        struct.pack_into("<QIHH", m, o + DESC, HDR, 16, DESC_F_NEXT, 1)
        struct.pack_into("<QIHH", m, o + DESC + 16, IDBUF, 20,
                         DESC_F_NEXT | DESC_F_WRITE, 2)
        struct.pack_into("<QIHH", m, o + DESC + 32, STATUS, 1, DESC_F_WRITE, 0)
        struct.pack_into("<H", m, o + AVAIL + 4 + 2 * (self.avail_idx % QSIZE), 0)
        self.avail_idx = (self.avail_idx + 1) & 0xffff
        struct.pack_into("<H", m, o + AVAIL + 2, self.avail_idx)
        if kick:
            os.eventfd_write(self.kick, 1)

    def submit_flush(self):
        """make a FLUSH available (status byte at FLUSH_STATUS), no kick"""
        m, o = self.mem, self.off
        struct.pack_into("<IIQ", m, o + HDR, VIRTIO_BLK_T_FLUSH, 0, 0)
        m[o + FLUSH_STATUS] = 0xff
        struct.pack_into("<QIHH", m, o + DESC, HDR, 16, DESC_F_NEXT, 1)
        struct.pack_into("<QIHH", m, o + DESC + 16, FLUSH_STATUS, 1,
                         DESC_F_WRITE, 0)
        struct.pack_into("<H", m, o + AVAIL + 4 + 2 * (self.avail_idx % QSIZE), 0)
        self.avail_idx = (self.avail_idx + 1) & 0xffff
        struct.pack_into("<H", m, o + AVAIL + 2, self.avail_idx)

    def completed(self, timeout):
        """the last request is in the used ring with status OK and id "vub" """
        deadline = time.monotonic() + timeout
        while self.used_idx() != self.avail_idx:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        o = self.off
        return (self.mem[o + STATUS] == 0 and
                self.mem[o + IDBUF:o + IDBUF + 3] == b"vub")

    def io(self):
        """one ring request, completed and called within SERVED_S"""
        self.submit()
        if not self.completed(SERVED_S):
            raise Closed(f"ring request not completed within {SERVED_S:g} s")
        r, _, _ = select.select([self.call], [], [], SERVED_S)
        if not r:
            raise Closed(f"no call within {SERVED_S:g} s")
        os.eventfd_read(self.call)


def served(vub, what):
    """a new well-behaved front-end: set up, I/O, three GET_FEATURES"""
    worst = None
    try:
        t0 = time.monotonic()
        fe = FrontEnd(vub.sock)
        fe.setup()
        fe.io()
        worst = time.monotonic() - t0
        for _ in range(3):
            t0 = time.monotonic()
            fe.get_u64(GET_FEATURES)
            worst = max(worst, time.monotonic() - t0)
        fe.close()
        ok = True
    except (Closed, Nack, OSError) as e:
        diag(f"well-behaved front-end: {e}")
        ok = False
    slowest = f"slowest {worst:.2f} s" if ok else "not served"
    tap(ok, f"{what}: another front-end is served (set-up + I/O, then requests; "
        f"{slowest}, limit {SERVED_S:g} s each)")
    return ok


def stopped(vub, case):
    ok = vub.stop(STOP_S)
    tap(ok, f"{case}: vub exits cleanly on SIGTERM within {STOP_S:g} s")
    if not ok:
        diag(vub.text())


def case_call_saturated(vub):
    h = FrontEnd(vub.sock)
    err = os.eventfd(0, os.EFD_CLOEXEC)
    try:
        # blocking eventfds, as a front-end may pass them: vub must not wait
        h.setup(err=err)
        nb = all(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
                 for fd in (h.call, err))
        tap(nb, "call-saturated: vub made the call and err eventfds non-blocking")
        os.eventfd_write(h.call, EVENTFD_MAX)
        h.submit()
        ok = h.completed(SERVED_S)
        # served after the call it could not write
        h.get_u64(GET_FEATURES)
        h.submit()
        ok = ok and h.completed(SERVED_S)
        h.get_u64(GET_FEATURES)
        ok = ok and os.eventfd_read(h.call) == EVENTFD_MAX
    except (Closed, Nack) as e:
        diag(f"hostile front-end: {e}")
        ok = False
    tap(ok, "call-saturated: requests complete and the front-end with the full "
        "call eventfd is still served")
    served(vub, "call-saturated")
    h.close()
    os.close(err)


def case_unread_replies(vub):
    served(vub, "unread-replies (before)")
    h = FrontEnd(vub.sock)
    h.s.setblocking(False)
    msg = struct.pack("<III", GET_FEATURES, VERSION, 0)
    sent, pending, stuck = 0, b"", None
    deadline = time.monotonic() + 60
    # until vub stops reading: our socket stays full for 1 s
    while time.monotonic() < deadline:
        if not pending:
            pending = msg
        try:
            n = h.s.send(pending)
            pending = pending[n:]
            sent += not pending
            stuck = None
        except BlockingIOError:
            stuck = stuck or time.monotonic()
            if time.monotonic() - stuck > 1.0:
                break
            time.sleep(0.01)
        except OSError as e:
            diag(f"hostile front-end: send: {e}")
            break
    diag(f"unread-replies: {sent} GET_FEATURES sent, none of the replies read")
    served(vub, "unread-replies")
    logged = vub.wait_log("did not read its reply", DROP_S)
    h.s.setblocking(True)
    closed = logged and h.closed_within(DROP_S)
    tap(logged and closed, "unread-replies: vub closed the connection that did "
        "not read its replies and logged why")
    h.close()


def drip(fe, data, period, log):
    for i in range(len(data)):
        try:
            fe.s.send(data[i:i + 1])
        except OSError as e:
            log.append(f"byte {i}: {e}")
            return
        log.append(f"byte {i} sent")
        time.sleep(period)


def case_slowloris(vub):
    w = FrontEnd(vub.sock)
    h = FrontEnd(vub.sock)
    try:
        w.setup()
    except (Closed, Nack) as e:
        diag(f"well-behaved front-end: {e}")
    log = []
    t = threading.Thread(target=drip, daemon=True,
                         args=(h, struct.pack("<III", GET_FEATURES, VERSION, 0),
                               1.5, log))
    t.start()
    time.sleep(0.2)
    worst, ok, rounds = 0.0, True, 0
    end = time.monotonic() + 8
    try:
        while time.monotonic() < end:
            t0 = time.monotonic()
            w.get_u64(GET_FEATURES)
            w.io()
            worst = max(worst, time.monotonic() - t0)
            rounds += 1
            time.sleep(0.5)
    except (Closed, Nack) as e:
        diag(f"well-behaved front-end: {e}")
        ok = False
    tap(ok, f"slowloris: another front-end is served while one sends a byte "
        f"every 1.5 s ({rounds} rounds of a request + I/O, slowest "
        f"{worst:.2f} s, limit {SERVED_S:g} s each)")
    closed = h.closed_within(DROP_S)
    t.join(20)
    diag("slow front-end: " + ", ".join(log))
    logged = "message incomplete 2 s after its first byte" in vub.text()
    tap(closed and logged, "slowloris: vub closed the connection whose message "
        "was incomplete 2 s after its first byte and logged why")
    w.close()
    h.close()


def refused(vub, what, step, cause, linger=None, **args):
    """set-up with @args must be refused at @step, @cause logged; @linger
    is called before the connection is closed"""
    fe = FrontEnd(vub.sock)
    try:
        fe.setup(**args)
        got = "accepted"
    except Nack as e:
        got = str(e)
    except Closed as e:
        got = f"closed ({e})"
    if linger:
        linger()
    ok = got.startswith(NAMES[step] + " refused") and fe.closed_within(DROP_S)
    ok = ok and vub.wait_log(cause, DROP_S)
    tap(ok, f"{what}: refused at {NAMES[step]}, connection closed, "
        f"'{cause}' logged")
    if not ok:
        diag(f"got: {got}")
    fe.close()
    return ok


def case_ring_fds(vub):
    cpu = []

    def measure():
        cpu0, t0 = vub.cpu_s(), time.monotonic()
        time.sleep(2)
        cpu.extend((vub.cpu_s() - cpu0, time.monotonic() - t0))

    r, w = os.pipe()
    os.close(w)             # a kick fd at EOF for good: it made vub spin
    refused(vub, "ring-fds: a pipe as the kick fd", SET_VRING_KICK,
            "not an eventfd", linger=measure, kick=r)
    tap(cpu[0] < 0.5, f"ring-fds: vub did not spin on it ({cpu[0]:.2f} s CPU "
        f"in {cpu[1]:.1f} s while connected, limit 0.5)")
    refused(vub, "ring-fds: a semaphore-mode eventfd as the kick fd",
            SET_VRING_KICK, "semaphore-mode eventfd",
            kick=os.eventfd(0, os.EFD_SEMAPHORE | os.EFD_CLOEXEC))
    r, w = os.pipe()
    refused(vub, "ring-fds: a pipe as the call fd", SET_VRING_CALL,
            "not an eventfd", call=w)
    os.close(r)
    r, w = os.pipe()
    refused(vub, "ring-fds: a pipe as the err fd", SET_VRING_ERR,
            "not an eventfd", err=w)
    os.close(r)
    os.close(w)
    served(vub, "ring-fds")


def case_regions(vub):
    # the ring addresses are aligned, their place in the mapping is not
    refused(vub, "regions: userspace_addr 8 bytes off a page", SET_MEM_TABLE,
            "userspace_addr not a multiple of 4096", uva=UVA + 8,
            ring_uva=UVA + 16)
    refused(vub, "regions: mmap_offset 8 bytes off a page", SET_MEM_TABLE,
            "mmap_offset not a multiple of 4096", mmap_offset=8)
    fe = FrontEnd(vub.sock)
    try:
        fe.setup(mmap_offset=4096)
        fe.io()
        ok = True
    except (Closed, Nack) as e:
        diag(f"front-end with mmap_offset 4096: {e}")
        ok = False
    tap(ok, "regions: a region at mmap_offset 4096 is accepted and its ring works")
    fe.close()


def keeps_replying(fe, seconds):
    """GET_FEATURES round trips for @seconds: (ok, median, slowest)"""
    times = []
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            t0 = time.monotonic()
            fe.get_u64(GET_FEATURES)
            times.append(time.monotonic() - t0)
            time.sleep(0.01)
        fe.io()
    except (Closed, Nack) as e:
        diag(f"well-behaved front-end: {e}")
        return False, None, None
    times.sort()
    return True, times[len(times) // 2], times[-1]


def case_truncated(vub):
    w = FrontEnd(vub.sock)
    try:
        w.setup()
    except (Closed, Nack) as e:
        diag(f"well-behaved front-end: {e}")
    for what, size, prepare in (
            ("the whole memfd (a ring access faults)", 0,
             lambda h: h.submit(kick=False)),
            ("the page of a FLUSH's status byte (a worker faults)",
             FLUSH_STATUS, lambda h: h.submit_flush())):
        try:
            h = FrontEnd(vub.sock)
        except OSError as e:
            tap(False, f"truncated {what}: vub alive (connect: {e}; vub exit "
                f"status {vub.p.poll()})")
            tap(False, f"truncated {what}: vub dropped that connection")
            continue
        try:
            h.setup()
            prepare(h)
            # the front-end's own mapping is gone too: no h.mem from here
            os.ftruncate(h.memfd, size)
            os.eventfd_write(h.kick, 1)
            got = "set up, truncated, kicked"
        except (Closed, Nack) as e:
            got = f"set-up failed: {e}"
        ok, med, worst = keeps_replying(w, 2.0)
        ok = ok and vub.p.poll() is None and med <= QUICK_S
        tap(ok, f"truncated {what}: vub alive, another front-end keeps getting "
            f"replies (median {med if med is None else round(med * 1000)} ms, "
            f"limit {QUICK_S * 1000:g}; slowest "
            f"{worst if worst is None else round(worst * 1000)} ms)")
        if not ok:
            diag(f"hostile front-end: {got}; vub exit status {vub.p.poll()}")
        closed = h.closed_within(DROP_S)
        logged = vub.wait_log("faulted (SIGBUS)", 1 if not closed else DROP_S)
        tap(closed and logged, f"truncated {what}: vub dropped that connection "
            f"and logged the SIGBUS")
        h.s.close()
        os.close(h.memfd)
        for fd in (h.kick, h.call):
            os.close(fd)
    n = vub.text().count("faulted (SIGBUS)")
    tap(n == 2, f"truncated: two faults, two connections dropped ({n} logged)")
    w.close()


CASES = {
    # name: (function, TAP lines without the SIGTERM one)
    "call-saturated": (case_call_saturated, 3),
    "unread-replies": (case_unread_replies, 3),
    "slowloris": (case_slowloris, 2),
    "ring-fds": (case_ring_fds, 6),
    "regions": (case_regions, 3),
    "truncated": (case_truncated, 5),
}


def main():
    names = sys.argv[1:] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"vu_hostile.py: unknown case {unknown[0]}; cases: {' '.join(CASES)}",
              file=sys.stderr)
        return 2
    print("TAP version 13")
    vub_bin = find_vub()
    if not vub_bin:
        print("1..0 # SKIP vub not built (make tools)")
        return 4
    plan = sum(CASES[n][1] + 1 for n in names)
    print(f"1..{plan}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vu_hostile.") as tmp:
        for name in names:
            func, lines = CASES[name]
            diag(f"--- {name}")
            vub = Vub(vub_bin, tmp, name)
            first, fails = TAP.n, TAP.fails
            try:
                func(vub)
            except Exception:
                vub.kill()
                raise
            if TAP.n - first != lines:
                tap(False, f"{name}: {TAP.n - first} results, expected {lines}")
            stopped(vub, name)
            if TAP.fails > fails:
                diag(f"vub's log ({name}):")
                diag(vub.text())
    return TAP.summary(plan)


if __name__ == "__main__":
    sys.exit(main())
