#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Real-VM vhost-user-blk migration tests (TAP 13).

Debian's QEMU 7.2 is the front-end: a guest with guest RAM on a shared memfd
and one vhost-user-blk disk, booted from the lab's kernel and busybox
initramfs plus a small overlay (vu_guest_init as rdinit, the static
vu_guest workload, virtio_blk.ko). No 9p: QEMU 7.2 blocks migration while a
9p export is mounted, so this cannot run inside the lab's own VM.

Scenarios, each with a fresh image and fresh back-ends (one per QEMU, both
on the same image):
  migrate  live-migrate the guest to a second QEMU over a UNIX socket while it
           does O_DIRECT reads into a 16 MiB buffer and rewrites
           self-describing blocks; the destination must keep running and
           find every block and buffer page intact;
  cancel   start a migration and migrate_cancel it midway; guest I/O must
           continue on the source (liveness timeout), then verify.
Run against vub (also with --coalesce 200,1: calls held across the
migration's messages), qemu-storage-daemon, and the vub --bug= modes, which must
make their scenario fail (no-dirty-log: migrate; disable-on-set-features:
cancel). A run whose guest kernel crashes is inconclusive and retried, and
a bug mode gets up to 4 runs to be caught (timing decides whether its
unlogged writes land after the first pass sent the buffer) (QEMU
7.2 under TCG sometimes corrupts guest memory across a migration, also with
its own virtio-blk and without memfd: VU_PLAIN=1 VU_NOMEMFD=1 show it).

Usage: vu_migrate.py [SCENARIO...]; VU_KEEP=1 keeps the logs, VU_VERBOSE=1
runs vub --verbose, VU_CPU= sets the QEMU CPU model.
"""
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ATTEMPTS = 4
TAP_N = 0
RESULTS = {"pass": 0, "fail": 0, "skip": 0}


def tap(ok, desc, skip=None):
    global TAP_N
    TAP_N += 1
    if skip:
        RESULTS["skip"] += 1
        print(f"ok {TAP_N} {desc} # SKIP {skip}", flush=True)
    elif ok:
        RESULTS["pass"] += 1
        print(f"ok {TAP_N} {desc}", flush=True)
    else:
        RESULTS["fail"] += 1
        print(f"not ok {TAP_N} {desc}", flush=True)


def diag(msg):
    for line in str(msg).splitlines():
        print(f"# {line}", flush=True)


def skip_all(reason):
    print("TAP version 13")
    print(f"1..0 # SKIP {reason}", flush=True)
    sys.exit(4)


def first_existing(paths):
    for p in paths:
        if p and os.path.exists(p):
            return p
    return None


def find_tree():
    """Repository top and build dir, from the source or installed location."""
    for top in (os.path.join(HERE, "..", ".."), os.path.join(HERE, "..", "..", "..")):
        top = os.path.abspath(top)
        if os.path.exists(os.path.join(top, "tools", "vm", "lab")):
            return top, os.environ.get("BUILD", os.path.join(top, "build"))
    return None, None


def find_kver():
    kver = os.environ.get("KVER")
    if kver:
        return kver
    cands = sorted(glob.glob("/boot/vmlinuz-6.12*"))
    return os.path.basename(cands[-1])[len("vmlinuz-"):] if cands else None


class QMP:
    def __init__(self, path, timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.s.settimeout(60)
        self.f = self.s.makefile("r")
        json.loads(self.f.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.s.sendall((json.dumps(msg) + "\n").encode())
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError(f"QMP closed during {name}")
            r = json.loads(line)
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise RuntimeError(f"{name}: {r['error'].get('desc')}")

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def count(path, word):
    try:
        with open(path, errors="replace") as f:
            return sum(1 for line in f if line.startswith(word))
    except OSError:
        return 0


def last_line(path, word):
    try:
        with open(path, errors="replace") as f:
            hits = [line.strip() for line in f if line.startswith(word)]
        return hits[-1] if hits else None
    except OSError:
        return None


def wait_for(pred, timeout, step=0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Env:
    def __init__(self, top, build, kver, vub, guest, tmp):
        self.top, self.build, self.kver = top, build, kver
        self.vub, self.guest, self.tmp = vub, guest, tmp
        self.kernel = f"/boot/vmlinuz-{kver}"
        self.initrd = os.path.join(tmp, "initrd")


def build_initrd(env):
    lab_initrd = os.path.join(env.build, "vm", "initramfs", f"initramfs-{env.kver}.cpio.gz")
    if not os.path.exists(lab_initrd):
        subprocess.run([os.path.join(env.top, "tools", "vm", "lab"), "prepare", "-p", "none"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    if not os.path.exists(lab_initrd):
        return f"no lab initramfs {lab_initrd} (tools/vm/lab prepare -p none)"
    ko = first_existing(glob.glob(f"/lib/modules/{env.kver}/kernel/drivers/block/virtio_blk.ko*"))
    if not ko:
        return f"virtio_blk.ko not found for {env.kver}"
    ovl = os.path.join(env.tmp, "ovl")
    os.makedirs(os.path.join(ovl, "lib", "modules", "vu"))
    shutil.copy(env.guest, os.path.join(ovl, "vu_guest"))
    shutil.copy(os.path.join(HERE, "vu_guest_init"), os.path.join(ovl, "vu-init"))
    os.chmod(os.path.join(ovl, "vu-init"), 0o755)
    dst = os.path.join(ovl, "lib", "modules", "vu", "virtio_blk.ko")
    with open(dst, "wb") as out:
        if ko.endswith(".xz"):
            subprocess.run(["xz", "-dc", ko], stdout=out, check=True)
        elif ko.endswith(".zst"):
            subprocess.run(["zstd", "-dc", ko], stdout=out, check=True)
        else:
            with open(ko, "rb") as f:
                out.write(f.read())
    cpio = subprocess.run("find . | sort | cpio -o -H newc --quiet -R 0:0 | gzip -1",
                          shell=True, cwd=ovl, stdout=subprocess.PIPE, check=True).stdout
    with open(env.initrd, "wb") as out:
        with open(lab_initrd, "rb") as f:
            out.write(f.read())
        out.write(cpio)
    return None


class Scenario:
    MEM = "256M"

    def __init__(self, env, name, backend, bug, opts=()):
        self.env, self.name, self.backend, self.bug = env, name, backend, bug
        self.opts = list(opts)
        self.dir = tempfile.mkdtemp(prefix=f"{name}.", dir=env.tmp)
        self.img = os.path.join(self.dir, "disk.img")
        self.procs = []
        self.qmp = None

    def path(self, n):
        return os.path.join(self.dir, n)

    def spawn(self, args, log):
        p = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def start_backend(self, tag):
        sock = self.path(f"{tag}.sock")
        if self.backend == "vub":
            args = [self.env.vub, "--socket", sock, "--file", self.img]
            if self.bug:
                args.append(f"--bug={self.bug}")
            args += self.opts
            if os.environ.get("VU_VERBOSE"):
                args.append("--verbose")
        else:
            args = ["qemu-storage-daemon", "--blockdev",
                    f"driver=file,node-name=f,filename={self.img},locking=off",
                    "--export",
                    f"type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path={sock},writable=on"]
        p = self.spawn(args, self.path(f"{tag}-backend.log"))
        if not wait_for(lambda: os.path.exists(sock) or p.poll() is not None, 10) or \
                not os.path.exists(sock):
            raise RuntimeError(f"{self.backend} did not create {sock}")
        return sock

    def start_qemu(self, tag, sock, incoming=None):
        args = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
                "-accel", "tcg", "-cpu", os.environ.get("VU_CPU", "max"), "-smp", "1", "-no-reboot",
                "-m", self.MEM,
                ] + (["-machine", "pc"] if os.environ.get("VU_NOMEMFD") else
                     ["-object", f"memory-backend-memfd,id=mem,size={self.MEM},share=on",
                      "-machine", "pc,memory-backend=mem"]) + [

                "-kernel", self.env.kernel, "-initrd", self.env.initrd,
                "-append", "console=ttyS0,115200 rdinit=/vu-init quiet panic=-1",
                "-serial", f"file:{self.path(tag + '.serial')}",
                ] + (["-drive", f"file={self.img},if=virtio,format=raw,file.locking=off"]
                     if os.environ.get("VU_PLAIN") else
                     ["-chardev", f"socket,id=vu0,path={sock}",
                      "-device", "vhost-user-blk-pci,chardev=vu0,num-queues=1"]) + [

                "-qmp", f"unix:{self.path(tag + '.qmp')},server=on,wait=off"]
        if incoming:
            args += ["-incoming", incoming]
        return self.spawn(args, self.path(f"{tag}-qemu.log"))

    def stop_marker(self):
        with open(self.img, "r+b") as f:
            f.seek(100 << 20)
            f.write(b"VU-STOP!")
            f.flush()
            os.fsync(f.fileno())

    def migration_status(self):
        return self.qmp.cmd("query-migrate")

    def run(self, mode):
        """Returns (ok, detail)."""
        with open(self.img, "wb") as f:
            f.truncate(128 << 20)
        src_sock = self.start_backend("src")
        dst_sock = self.start_backend("dst")
        src_ser, dst_ser = self.path("src.serial"), self.path("dst.serial")
        mig = "unix:" + self.path("mig.sock")
        self.start_qemu("src", src_sock)
        dst = self.start_qemu("dst", dst_sock, incoming=mig)
        if not wait_for(lambda: count(src_ser, "VU-LIVE"), 300):
            return False, "guest did not come up: " + str(last_line(src_ser, "VU-"))
        if not wait_for(lambda: count(src_ser, "VU-ITER") >= 2, 120):
            return False, "guest I/O did not start: " + str(last_line(src_ser, "VU-"))
        self.qmp = QMP(self.path("src.qmp"))
        # migrate: 64 MiB/s, about 2 s for the first pass, during which the
        # guest re-reads its buffer several times. Holding the switchover
        # back for more passes would catch more, but QEMU 7.2 TCG then
        # corrupts guest memory nearly every time (any disk, see above).
        bw = 64 << 20 if mode == "migrate" else 8 << 20
        self.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": bw, "downtime-limit": 1000})
        self.qmp.cmd("migrate", uri=mig)
        if mode == "migrate":
            st = wait_for(lambda: self.migration_status().get("status") in
                          ("completed", "failed", "cancelled") and self.migration_status(), 300, 0.5)
            if not st or st.get("status") != "completed":
                return False, f"migration did not complete: {st}"
            diag(f"{self.name}: migrated, total {st.get('total-time')} ms, downtime "
                 f"{st.get('downtime')} ms, {st.get('ram', {}).get('transferred', 0) >> 20} MiB")
            self.qmp.cmd("quit")
            n = count(dst_ser, "VU-ITER")
            if not wait_for(lambda: count(dst_ser, "VU-ITER") >= n + 2 or
                            count(dst_ser, "VU-RESULT"), 90):
                return False, "destination guest I/O stalled after switchover (liveness 90 s)"
            serial = dst_ser
        else:
            if not wait_for(lambda: self.migration_status().get("status") == "active" and
                            self.migration_status().get("ram", {}).get("transferred", 0) > (8 << 20),
                            60, 0.2):
                return False, f"migration never became active: {self.migration_status()}"
            self.qmp.cmd("migrate_cancel")
            st = wait_for(lambda: self.migration_status().get("status") in
                          ("cancelled", "completed", "failed") and self.migration_status(), 60, 0.2)
            if not st or st.get("status") != "cancelled":
                return False, f"migrate_cancel did not cancel: {st}"
            dst.kill()
            n = count(src_ser, "VU-ITER")
            if not wait_for(lambda: count(src_ser, "VU-ITER") >= n + 3 or
                            count(src_ser, "VU-RESULT"), 60):
                return False, (f"guest I/O hangs after migrate_cancel (no progress in 60 s; "
                               f"last: {last_line(src_ser, 'VU-ITER')})")
            serial = src_ser
        self.stop_marker()
        if not wait_for(lambda: count(serial, "VU-RESULT"), 120):
            return False, "guest did not finish after the stop marker: " + \
                str(last_line(serial, "VU-"))
        res = last_line(serial, "VU-RESULT")
        return res.startswith("VU-RESULT ok"), res

    CRASH_RE = re.compile(r"Oops|BUG:|kernel BUG|general protection fault|double fault|"
                          r"Kernel panic|unable to handle|invalid opcode")

    def guest_crash(self):
        """The first guest kernel crash line on either console, or None."""
        for n in ("dst.serial", "src.serial"):
            try:
                with open(self.path(n), errors="replace") as f:
                    for line in f:
                        if self.CRASH_RE.search(line):
                            return f"{n}: {line.strip()[:120]}"
            except (OSError, TypeError):
                continue
        return None

    def dump(self):
        """Diagnostics for a failed scenario: the end of every log."""
        for n in ("src.serial", "dst.serial", "src-backend.log", "dst-backend.log",
                  "src-qemu.log", "dst-qemu.log"):
            try:
                with open(self.path(n), errors="replace") as f:
                    lines = f.read().splitlines()[-6:]
            except OSError:
                continue
            for line in lines:
                diag(f"  {n}: {line}")

    def cleanup(self):
        if os.environ.get("VU_KEEP"):
            diag(f"kept {self.dir}")
            self.dir = None
        if self.qmp:
            self.qmp.close()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def main():
    only = sys.argv[1:]
    top, build = find_tree()
    if not top:
        skip_all("cannot find the repository (tools/vm/lab)")
    kver = find_kver()
    if not kver or not os.path.exists(f"/boot/vmlinuz-{kver}"):
        skip_all("no 6.12 kernel in /boot (install linux-image-6.12 or set KVER)")
    vub = first_existing([os.path.join(d, "vub") for d in
                          (os.environ.get("KMEMLAB_BIN"), os.path.join(build, "bin")) if d])
    guest = first_existing([os.path.join(HERE, "vu_guest"),
                            os.path.join(build, "selftests", "vhost_user", "vu_guest")])
    if not vub or not guest:
        skip_all("vub or vu_guest not built (make -C selftests/vhost_user)")
    for tool in ("qemu-system-x86_64", "cpio", "gzip", "xz"):
        if not shutil.which(tool):
            skip_all(f"'{tool}' not installed")
    have_qsd = shutil.which("qemu-storage-daemon") is not None

    # (name, backend, bug, mode, must pass[, vub options])
    cases = [
        ("vub-migrate", "vub", None, "migrate", True),
        ("vub-cancel", "vub", None, "cancel", True),
        # held calls across SET_FEATURES(LOG_ALL), GET_VRING_BASE and the
        # switch-over; threshold 1 IOPS: coalescing at this guest's rate
        ("vub-coalesce-migrate", "vub", None, "migrate", True, ("--coalesce", "200,1")),
        ("vub-coalesce-cancel", "vub", None, "cancel", True, ("--coalesce", "200,1")),
        ("qsd-migrate", "qsd", None, "migrate", True),
        ("qsd-cancel", "qsd", None, "cancel", True),
        ("vub-bug-no-dirty-log-migrate", "vub", "no-dirty-log", "migrate", False),
        ("vub-bug-disable-on-set-features-cancel", "vub", "disable-on-set-features",
         "cancel", False),
    ]
    if only:
        cases = [c for c in cases if c[0] in only]
    tmp = tempfile.mkdtemp(prefix="vu_migrate.")
    try:
        env = Env(top, build, kver, vub, guest, tmp)
        err = build_initrd(env)
        if err:
            skip_all(err)
        print("TAP version 13")
        print(f"1..{len(cases)}", flush=True)
        diag(f"kernel {kver}, QEMU {subprocess.run(['qemu-system-x86_64', '--version'], stdout=subprocess.PIPE, text=True).stdout.splitlines()[0]}")
        for name, backend, bug, mode, must_pass, *opts in cases:
            if backend == "qsd" and not have_qsd:
                tap(True, name, skip="qemu-storage-daemon not installed")
                continue
            for attempt in range(1, ATTEMPTS + 1):
                sc = Scenario(env, name, backend, bug, *opts)
                t0 = time.time()
                crashed = None
                try:
                    ok, detail = sc.run(mode)
                except Exception as e:  # a broken run is a failed run, with the cause
                    ok, detail = False, f"error: {e}"
                finally:
                    crashed = sc.guest_crash()
                    if ok != must_pass or crashed:
                        sc.dump()
                    sc.cleanup()
                diag(f"{name}: {detail} ({time.time() - t0:.0f} s)")
                if not crashed and not must_pass and ok and attempt < ATTEMPTS:
                    # whether unlogged device writes land after the first
                    # pass sent the buffer depends on timing: try again
                    diag(f"{name}: attempt {attempt}: bug not caught this time, retrying")
                    continue
                if not crashed:
                    break
                # QEMU 7.2 TCG sometimes corrupts guest memory across a
                # migration, with any disk (also its own virtio-blk): a
                # guest kernel crash proves nothing about the back-end
                ok, detail = False, f"guest kernel crashed: {crashed}"
                diag(f"{name}: attempt {attempt}: inconclusive, guest kernel crashed "
                     f"({crashed}); " + ("retrying" if attempt < ATTEMPTS else "giving up"))
            if crashed:
                tap(True, name, skip=f"guest kernel crashed after migration in {ATTEMPTS} "
                    "attempts (QEMU 7.2 TCG memory corruption, seen with plain virtio-blk too)")
                continue
            if must_pass:
                tap(ok, f"{name}: {mode} with {backend}")
            else:
                tap(not ok, f"{name}: {mode} detects --bug={bug}")
    finally:
        if not os.environ.get("VU_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"# pass {RESULTS['pass']} fail {RESULTS['fail']} skip {RESULTS['skip']}")
    if RESULTS["fail"]:
        sys.exit(1)
    sys.exit(4 if not RESULTS["pass"] and RESULTS["skip"] else 0)


if __name__ == "__main__":
    main()
