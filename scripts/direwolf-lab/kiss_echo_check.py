#!/usr/bin/env python3
"""Self-test for lab.py: two Direwolf stations, 20 AX.25 UI frames each way over KISS TCP.

    python3 kiss_echo_check.py [--frames 20] [--mode alternate|burst] [--base-port 18001]
                               [--noise-db X] [--dir DIR] [--keep]

Starts lab.py with 2 stations, connects a KISS TCP client to each, sends frames
(destination QST-0, source N0CALA / N0CALB, control 0x03, PID 0xF0, random info of
20-250 bytes that always contains 0xC0 and 0xDB), and checks that the other station
delivers every frame byte-exact.  Prints counts and latencies; exit 0 only if every
frame arrived, nothing unexpected arrived, and the lab shut down cleanly.

Modes:
  alternate  (default) A sends one frame, waits until B delivers it, then B sends one, ...
             -> per-frame latency of an idle channel.
  burst      A queues all its frames back to back, waits for all, then B does the same
             -> throughput; latency includes queueing.
  both       both stations queue all their frames at the same moment: shows the channel's
             collisions (Direwolf never retransmits UI frames), so some loss is expected.
"""

import argparse
import json
import os
import random
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

FEND, FESC, TFEND, TFESC = 0xC0, 0xDB, 0xDC, 0xDD

READY_TIMEOUT = 180.0        # lab start-up
FRAME_TIMEOUT = 120.0        # one frame on an idle channel (normally ~1-3 s)
BURST_TIMEOUT = 600.0        # a whole burst (normally ~30 s for 20 frames)
SHUTDOWN_TIMEOUT = 60.0


def ax25_addr(call, ssid, last, cbit):
    call = call.upper()
    assert 1 <= len(call) <= 6 and all(c.isalnum() for c in call) and 0 <= ssid <= 15
    b = bytes((ord(c) << 1) for c in call.ljust(6))
    return b + bytes([(0x80 if cbit else 0) | 0x60 | (ssid << 1) | (1 if last else 0)])


def ui_frame(dest, src, info):
    # AX.25 v2 command frame: C bit set in the destination SSID byte, clear in the source.
    return ax25_addr(dest, 0, False, True) + ax25_addr(src, 0, True, False) + b"\x03\xf0" + info


def kiss_escape(data):
    out = bytearray()
    for b in data:
        if b == FEND:
            out += bytes([FESC, TFEND])
        elif b == FESC:
            out += bytes([FESC, TFESC])
        else:
            out.append(b)
    return bytes(out)


def kiss_data_frame(frame, port=0):
    return bytes([FEND]) + kiss_escape(bytes([(port << 4) | 0x00]) + frame) + bytes([FEND])


def kiss_unescape(data):
    out = bytearray()
    esc = False
    for b in data:
        if esc:
            out.append(FEND if b == TFEND else FESC if b == TFESC else b)
            esc = False
        elif b == FESC:
            esc = True
        else:
            out.append(b)
    return bytes(out)


class KissClient:
    def __init__(self, name, port):
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = bytearray()

    def send_frame(self, frame):
        self.sock.setblocking(True)
        self.sock.sendall(kiss_data_frame(frame))
        self.sock.setblocking(False)

    def read_frames(self):
        """Non-blocking: returns a list of (command byte, payload) decoded so far."""
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    raise ConnectionError("%s: Direwolf closed the KISS connection" % self.name)
                self.buf += d
        except BlockingIOError:
            pass
        frames = []
        while True:
            i = self.buf.find(FEND)
            if i < 0:
                break
            raw = bytes(self.buf[:i])
            del self.buf[:i + 1]
            if raw:                                   # empty between back-to-back FENDs
                body = kiss_unescape(raw)
                frames.append((body[0], body[1:]))
        return frames


def random_info(rng):
    n = rng.randint(20, 250)
    info = bytearray(rng.getrandbits(8) for _ in range(n))
    for special in (FEND, FESC, FEND, FESC):      # always include the KISS special bytes
        info[rng.randrange(n)] = special
    return bytes(info)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lab", default=os.path.join(here, "lab.py"))
    ap.add_argument("--frames", type=int, default=20, help="frames per direction")
    ap.add_argument("--mode", choices=("alternate", "burst", "both"), default="alternate")
    ap.add_argument("--base-port", type=int, default=18001)
    ap.add_argument("--noise-db", type=float, default=None)
    ap.add_argument("--dir", default=None, help="lab directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the lab directory (logs)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--frame-timeout", type=float, default=FRAME_TIMEOUT,
                    help="alternate mode: give up on one frame after this many seconds "
                         "(default %.0f; lower it for lossy --noise-db runs)" % FRAME_TIMEOUT)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    lab_dir = args.dir or tempfile.mkdtemp(prefix="dwlab-")
    cmd = [sys.executable, args.lab, "--stations", "2", "--dir", lab_dir, "--base-port", str(args.base_port)]
    if args.noise_db is not None:
        cmd += ["--noise-db", str(args.noise_db)]
    print("lab: %s" % " ".join(cmd), flush=True)
    t_start = time.monotonic()
    lab = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)

    ok = True
    clients = {}
    sent = {"A": [], "B": []}          # (frame, t_sent)
    pending = {"A": {}, "B": {}}       # receiver -> {frame: t_sent}
    latencies = {"A->B": [], "B->A": []}
    delivered = {"A->B": 0, "B->A": 0}
    unexpected = []
    try:
        # ---- READY ----
        line = b""
        deadline = time.monotonic() + READY_TIMEOUT
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or lab.poll() is not None:
                raise RuntimeError("lab did not print READY (rc=%s)" % lab.poll())
            r, _, _ = select.select([lab.stdout], [], [], min(left, 1.0))
            if r:
                c = os.read(lab.stdout.fileno(), 1)
                if not c:
                    raise RuntimeError("lab closed stdout before READY (rc=%s)" % lab.wait())
                line += c
        parts = line.decode().split()
        if parts[0] != "READY" or len(parts) != 3:
            raise RuntimeError("unexpected line from lab: %r" % line)
        ports = [int(p) for p in parts[1:]]
        print("READY after %.1f s, KISS ports %s" % (time.monotonic() - t_start, ports), flush=True)
        clients["A"] = KissClient("A", ports[0])
        clients["B"] = KissClient("B", ports[1])
        calls = {"A": "N0CALA", "B": "N0CALB"}
        other = {"A": "B", "B": "A"}

        def pump(timeout):
            """Wait up to timeout for KISS input, then account every frame received."""
            socks = [c.sock for c in clients.values()]
            select.select(socks, [], [], timeout)
            now = time.monotonic()
            for rx, cl in clients.items():
                for cmdbyte, payload in cl.read_frames():
                    tx = other[rx]
                    key = "%s->%s" % (tx, rx)
                    if cmdbyte == 0x00 and payload in pending[rx]:
                        latencies[key].append(now - pending[rx].pop(payload))
                        delivered[key] += 1
                    else:
                        unexpected.append((rx, cmdbyte, payload))
                        print("UNEXPECTED at %s: cmd 0x%02x, %d bytes: %s" % (
                            rx, cmdbyte, len(payload), payload[:40].hex()), flush=True)

        def send(tx):
            frame = ui_frame("QST", calls[tx], random_info(rng))
            t = time.monotonic()
            clients[tx].send_frame(frame)
            sent[tx].append((frame, t))
            pending[other[tx]][frame] = t
            return frame

        def wait_until(cond, timeout):
            deadline = time.monotonic() + timeout
            while not cond():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if lab.poll() is not None:
                    raise RuntimeError("lab exited early (rc=%s)" % lab.returncode)
                pump(min(left, 1.0))
            return True

        if args.mode == "alternate":
            for i in range(args.frames):
                for tx in ("A", "B"):
                    frame = send(tx)
                    rx = other[tx]
                    if not wait_until(lambda: frame not in pending[rx], args.frame_timeout):
                        print("LOST %s->%s frame %d (%d bytes)" % (tx, rx, i, len(frame)), flush=True)
        elif args.mode == "burst":
            for tx in ("A", "B"):
                t0 = time.monotonic()
                for _ in range(args.frames):
                    send(tx)
                wait_until(lambda: not pending[other[tx]], BURST_TIMEOUT)
                dt = time.monotonic() - t0
                nbytes = sum(len(f) - 16 for f, _ in sent[tx])
                print("burst %s->%s: %d frames, %d info bytes in %.1f s = %.0f B/s" % (
                    tx, other[tx], args.frames, nbytes, dt, nbytes / dt), flush=True)
        else:  # both
            for _ in range(args.frames):
                send("A")
                send("B")
            wait_until(lambda: not pending["A"] and not pending["B"], BURST_TIMEOUT)
        # give stragglers / duplicates a moment to show up (condition: a quiet second)
        pump(1.0)
    except Exception as e:
        print("ERROR: %s" % e, flush=True)
        ok = False
    finally:
        for c in clients.values():
            try:
                c.sock.close()
            except OSError:
                pass
        # ---- shut the lab down and check for orphans ----
        pids = []
        try:
            with open(os.path.join(lab_dir, "lab.json")) as f:
                pids = [s["pid"] for s in json.load(f)["stations"]]
        except (OSError, ValueError, KeyError):
            pass
        if lab.poll() is None:
            lab.send_signal(signal.SIGTERM)
        try:
            rc = lab.wait(timeout=SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            lab.kill()
            rc = lab.wait()
            print("lab did not stop within %.0f s of SIGTERM" % SHUTDOWN_TIMEOUT)
            ok = False
        if rc != 0:
            print("lab exit code %s" % rc)
            ok = False
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
            except PermissionError:
                alive.append(pid)
        if alive:
            print("ORPHAN direwolf pids still alive: %s" % alive)
            ok = False

    for key in ("A->B", "B->A"):
        tx = key[0]
        n = len(sent[tx])
        lat = latencies[key]
        if lat:
            print("%s: delivered %d/%d byte-exact; latency median %.2f s, min %.2f s, max %.2f s" % (
                key, delivered[key], n, statistics.median(lat), min(lat), max(lat)))
        else:
            print("%s: delivered %d/%d" % (key, delivered[key], n))
        if delivered[key] != n or n != args.frames:
            ok = False
    all_lat = latencies["A->B"] + latencies["B->A"]
    if all_lat:
        print("overall: delivered %d/%d, median latency %.2f s" % (
            len(all_lat), len(sent["A"]) + len(sent["B"]), statistics.median(all_lat)))
    if unexpected:
        print("unexpected frames: %d" % len(unexpected))
        ok = False
    ether_log = os.path.join(lab_dir, "ether.log")
    if os.path.exists(ether_log):
        with open(ether_log) as f:
            txs = [l for l in f if "TX-START" in l]
        print("ether: %d transmissions, %d overlapping" % (len(txs), sum("collision" in l for l in txs)))
    print("elapsed %.1f s; lab dir %s%s" % (time.monotonic() - t_start, lab_dir,
                                            "" if (args.keep or args.dir or not ok) else " (removed)"))
    if not args.keep and not args.dir and ok:
        shutil.rmtree(lab_dir, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
