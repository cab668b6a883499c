# SPDX-License-Identifier: GPL-2.0
"""What the Python front-ends of the vhost_user tests share: TAP output,
finding vub, the vhost-user message numbers and a connection that sends a
request and reads its reply, each with a deadline (a back-end that stops
answering is a failure, never a hang)."""
import os
import socket
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# vhost-user message header flags and requests (docs/interop/vhost-user.rst)
VERSION, REPLY, NEED_REPLY = 0x1, 0x4, 0x8
GET_FEATURES, SET_FEATURES, SET_OWNER = 1, 2, 3
SET_MEM_TABLE = 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE = 8, 9, 10
SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR = 12, 13, 14
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES = 15, 16
SET_VRING_ENABLE = 18
GET_INFLIGHT_FD, SET_INFLIGHT_FD = 31, 32
NAMES = {SET_MEM_TABLE: "SET_MEM_TABLE", SET_VRING_KICK: "SET_VRING_KICK",
         SET_VRING_CALL: "SET_VRING_CALL", SET_VRING_ERR: "SET_VRING_ERR",
         SET_INFLIGHT_FD: "SET_INFLIGHT_FD"}
F_PROTOCOL_FEATURES, F_VERSION_1 = 30, 32
PF_REPLY_ACK, PF_INFLIGHT = 3, 12
DESC_F_NEXT, DESC_F_WRITE = 1, 2


class Tap:
    """TAP 13 results; count() is what a test's exit code is made of"""

    def __init__(self):
        self.n = 0
        self.fails = 0

    def __call__(self, ok, desc):
        self.n += 1
        self.fails += not ok
        print(f"{'ok' if ok else 'not ok'} {self.n} {desc}", flush=True)

    def summary(self, plan):
        """print the totals; the exit code: 1 unless all @plan passed"""
        print(f"# {self.n - self.fails} passed, {self.fails} failed of {plan}",
              flush=True)
        return 1 if self.fails or self.n != plan else 0


def diag(msg):
    for line in str(msg).splitlines():
        print(f"# {line}", flush=True)


def find_vub():
    for d in (os.environ.get("KMEMLAB_BIN"), os.path.join(HERE, "..", "..", "bin"),
              os.path.join(HERE, "..", "..", "build", "bin")):
        if d and os.access(os.path.join(d, "vub"), os.X_OK):
            return os.path.abspath(os.path.join(d, "vub"))
    return None


class Closed(Exception):
    """the back-end closed the connection (or never answered)"""


class Nack(Exception):
    """a REPLY_ACK with a non-zero status"""


class Conn:
    """One front-end connection; every receive waits @timeout s at most."""

    def __init__(self, path, timeout):
        self.timeout = timeout
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        try:
            self.s.connect(path)
        except OSError:
            self.s.close()
            raise

    def send(self, req, payload=b"", fds=(), flags=VERSION):
        msg = struct.pack("<III", req, flags, len(payload)) + payload
        try:
            if fds:
                socket.send_fds(self.s, [msg], list(fds))
            else:
                self.s.sendall(msg)
        except OSError as e:
            raise Closed(f"send: {e}") from e

    def _recv(self, n, fds=0):
        try:
            if fds:
                return socket.recv_fds(self.s, n, fds)[:2]
            return self.s.recv(n), []
        except socket.timeout as e:
            raise Closed(f"no reply within {self.timeout:g} s") from e
        except OSError as e:
            raise Closed(f"recv: {e}") from e

    def recv_exact(self, n, fds=0):
        """@n bytes, and up to @fds file descriptors sent with the first"""
        buf, got = b"", []
        while len(buf) < n:
            chunk, more = self._recv(n - len(buf), fds if not buf else 0)
            got += more
            if not chunk:
                raise Closed("connection closed")
            buf += chunk
        return buf, got

    def reply_fds(self, req):
        """the reply to @req: (payload, file descriptors sent with it)"""
        hdr, fds = self.recv_exact(12, 1)
        r, flags, size = struct.unpack("<III", hdr)
        payload = self.recv_exact(size)[0] if size else b""
        if r != req or not flags & REPLY:
            for fd in fds:
                os.close(fd)
            raise Closed(f"unexpected reply {r} flags {flags:#x} to {req}")
        return payload, fds

    def reply(self, req):
        payload, fds = self.reply_fds(req)
        for fd in fds:
            os.close(fd)
        return payload

    def get_u64(self, req):
        self.send(req)
        return struct.unpack("<Q", self.reply(req))[0]

    def ack(self, req, payload=b"", fds=()):
        """a request with NEED_REPLY; raises Nack/Closed"""
        self.send(req, payload, fds, VERSION | NEED_REPLY)
        status = struct.unpack("<Q", self.reply(req))[0]
        if status:
            raise Nack(f"{NAMES.get(req, req)} refused (status {status})")

    def close(self):
        self.s.close()
