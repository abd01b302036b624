#!/usr/bin/env python3
"""Emulated Meshtastic devices on one simulated LoRa channel, for Courier's tests.

Each device serves the Meshtastic client "stream API" (0x94 0xC3, 16-bit big-endian length, one protobuf) on a
pseudo-terminal (as a USB serial board does; a stable symlink DIR/devN points at it) and on TCP 127.0.0.1 (as
meshtasticd and Wi-Fi boards do on port 4403; here a free port). The messages are the meshtastic Python package's
own protobuf classes (meshtastic.protobuf.*), so the emulator speaks the interface as that package defines it, and
the package's own client (meshtastic.tcp_interface / serial_interface) is used to check the handshake.

What it does as firmware 2.7 does (see firmware-notes/meshtastic.md):
- want_config_id N: my_info, own node_info, metadata, 8 channels, the config sections, the module configs, the
  other devices' node_info, config_complete_id N.
- ToRadio.packet: Data.payload over 233 bytes: the whole ToRadio is dropped with no answer. Over 231 to broadcast,
  or over 219 to a node whose public key the device knows (PKI): QueueStatus res=7 and a Routing NAK TOO_LARGE.
  Otherwise the packet takes one of 16 transmit slots and is answered with QueueStatus (free, maxlen 16, its id);
  a full queue drops it (res=1 here). Id 0 is replaced by a new id; an id seen in the last 20 packets is ignored.
  want_ack with hop limit 0 raises the hop limit to 3 (counted: Courier must never do that).
- The transmit queue sends one packet at a time, taking LongFast time on air times --time-scale, and delivers it
  to the clients of the other devices (a broadcast to all, a directed packet to its destination) as
  FromRadio.packet; a QueueStatus tells the client whenever the number of free slots changes.
- heartbeat: answered with QueueStatus.
- --crossing-status: before each packet's own answer, a QueueStatus counted without the packet (id 0), as when the
  answer to a heartbeat, or a slot freed by a transmission, crosses the client's packet on the line (0.2 s ahead of
  it). A client that took its free count from it would overrun the queue.

Usage: meshtastic_emulator.py DIR [--devices N] [--time-scale S] [--slots N] [--crossing-status]
Writes DIR/devices.json ({"devices": [{"node", "serial", "tcp"}]}) when ready and DIR/stats.json on every change.
Reads commands on stdin, one a line: "unplug I" (the device goes away: pty closed and symlink removed, TCP client
closed and the port refusing), "replug I" (back, new pty behind the same symlink, same TCP port). Exits at EOF.
"""
import argparse, errno, json, math, os, pty, random, select, socket, sys, threading, time, tty

from meshtastic.protobuf import channel_pb2, config_pb2, mesh_pb2, module_config_pb2, portnums_pb2

START1, START2 = 0x94, 0xC3
MAX_FRAME = 512
MAX_PAYLOAD = 233          # nanopb size of Data.payload: larger fails to decode, the ToRadio is dropped
BROADCAST_LIMIT = 231      # firmware 2.5+ adds Data.bitfield (2 bytes) on air
PKI_LIMIT = 219            # PKI adds 12 bytes (nonce and tag) to a directed packet
SLOTS = 16
BROADCAST = 0xFFFFFFFF
TOO_LARGE = mesh_pb2.Routing.Error.Value("TOO_LARGE")


def longfast_airtime(nbytes):
    """LongFast: SF11, 250 kHz, CR 4/5, 16-symbol preamble, explicit header, CRC on (Semtech's formula)."""
    sf, bw, cr, pre = 11, 250_000, 1, 16
    ts = (1 << sf) / bw
    de = 1 if ts >= 0.016 else 0
    n = 8 + max(math.ceil((8 * nbytes - 4 * sf + 28 + 16) / (4 * (sf - 2 * de))) * (cr + 4), 0)
    return (pre + 4.25) * ts + n * ts


class Client:
    """One connection from a client: a pty master or a TCP socket; reads frames, writes FromRadio frames."""

    def __init__(self, device, kind, fd=None, sock=None):
        self.device, self.kind, self.fd, self.sock = device, kind, fd, sock
        self.buf = bytearray()
        self.configured = False
        self.closed = False
        self.wlock = threading.Lock()

    def fileno(self):
        return self.sock.fileno() if self.sock else self.fd

    def write_frame(self, msg):
        data = msg.SerializeToString()
        frame = bytes([START1, START2, len(data) >> 8, len(data) & 0xFF]) + data
        with self.wlock:
            if self.closed:
                return
            try:
                if self.sock:
                    self.sock.sendall(frame)
                else:
                    # A pty whose reader is gone fills up: drop the frame (a device's serial buffer overruns too).
                    os.write(self.fd, frame)
            except (BlockingIOError, InterruptedError):
                self.device.emu.count("frames_dropped_to_client")
            except OSError:
                self.closed = True

    def feed(self, data):
        """Frame parser as StreamAPI has it: skip to 0x94 0xC3, take the length, drop lengths over 512."""
        self.buf += data
        while True:
            i = self.buf.find(bytes([START1, START2]))
            if i < 0:
                # Keep a trailing 0x94 that may start a frame.
                self.buf = self.buf[-1:] if self.buf[-1:] == bytes([START1]) else bytearray()
                return
            del self.buf[:i]
            if len(self.buf) < 4:
                return
            n = (self.buf[2] << 8) | self.buf[3]
            if n > MAX_FRAME:
                del self.buf[:2]
                self.device.emu.count("bad_frames")
                continue
            if len(self.buf) < 4 + n:
                return
            body = bytes(self.buf[4:4 + n])
            del self.buf[:4 + n]
            self.device.handle(self, body)


class Device:
    def __init__(self, emu, index, node):
        self.emu, self.index, self.node = emu, index, node
        self.public_key = os.urandom(32)
        self.lock = threading.Lock()
        self.status_lock = threading.Lock()
        self.clients = []
        self.queue = []            # MeshPackets waiting to go on air
        self.recent_ids = []
        self.from_radio_id = 0
        self.pty_master = None
        self.pty_slave = None
        self.link = os.path.join(emu.dir, f"dev{index}")
        self.listener = None
        self.tcp_port = 0
        self.present = False
        self.wake = threading.Condition(self.lock)
        threading.Thread(target=self.transmitter, daemon=True).start()

    # --- presence -------------------------------------------------------------------------------------------
    def plug(self):
        master, slave = pty.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.pty_master, self.pty_slave = master, slave
        tmp = self.link + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.link)
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.tcp_port))
        ls.listen(4)
        self.tcp_port = ls.getsockname()[1]
        self.listener = ls
        serial_client = Client(self, "serial", fd=master)
        with self.lock:
            self.present = True
            self.clients = [serial_client]
        threading.Thread(target=self.serve, args=(serial_client,), daemon=True).start()
        threading.Thread(target=self.accept, args=(ls,), daemon=True).start()

    def unplug(self):
        with self.lock:
            self.present = False
            clients, self.clients = self.clients, []
            self.queue.clear()
            ls, self.listener = self.listener, None
            master, slave = self.pty_master, self.pty_slave
            self.pty_master = self.pty_slave = None
        if os.path.lexists(self.link):
            os.unlink(self.link)
        for c in clients:
            with c.wlock:
                c.closed = True
                if c.sock:
                    try:
                        c.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    c.sock.close()
        if ls:
            # shutdown wakes the thread blocked in accept(); close alone would leave the port listening.
            try:
                ls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            ls.close()
        # Closing both ends hangs up the pty: the relay's read fails as when a USB device disappears.
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)

    def accept(self, ls):
        while True:
            try:
                s, _ = ls.accept()
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = Client(self, "tcp", sock=s)
            with self.lock:
                if not self.present:
                    s.close()
                    return
                # A new TCP connection closes the previous one (as the firmware's API server does).
                old = [x for x in self.clients if x.kind == "tcp"]
                self.clients = [x for x in self.clients if x.kind != "tcp"] + [c]
            for o in old:
                with o.wlock:
                    o.closed = True
                    try:
                        o.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            self.emu.count("tcp_connections")
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        while not c.closed:
            try:
                r, _, _ = select.select([c.fileno()], [], [], 0.2)
            except (OSError, ValueError):
                break
            if not r:
                continue
            try:
                data = c.sock.recv(4096) if c.sock else os.read(c.fd, 4096)
            except BlockingIOError:
                continue
            except OSError as e:
                if c.sock is None and e.errno == errno.EIO:
                    time.sleep(0.05)   # no reader on the slave side right now
                    continue
                break
            if not data:
                if c.sock:
                    break
                continue
            c.feed(data)
        with self.lock:
            if c in self.clients and c.kind == "tcp":
                self.clients.remove(c)
        if c.sock:
            c.sock.close()

    # --- the API --------------------------------------------------------------------------------------------
    def send(self, c, **kw):
        with self.lock:
            self.from_radio_id += 1
            fid = self.from_radio_id
        m = mesh_pb2.FromRadio(id=fid, **kw)
        c.write_frame(m)

    def queue_status(self, res, packet_id):
        with self.lock:
            free = self.emu.slots - len(self.queue)
        return mesh_pb2.QueueStatus(res=res, free=free, maxlen=self.emu.slots, mesh_packet_id=packet_id)

    def send_status(self, c, res, packet_id):
        """Counts the free slots and writes the answer as one step (the firmware does both on one thread): a count
        taken before a packet was queued is never written after the packet's own answer."""
        with self.status_lock:
            self.send(c, queueStatus=self.queue_status(res, packet_id))

    def node_info(self):
        u = mesh_pb2.User(id=f"!{self.node:08x}", long_name=f"Emulated {self.index}", short_name=f"E{self.index}",
                          public_key=self.public_key)
        return mesh_pb2.NodeInfo(num=self.node, user=u, last_heard=int(time.time()))

    def handle(self, c, body):
        t = mesh_pb2.ToRadio()
        try:
            t.ParseFromString(body)
        except Exception:
            self.emu.count("undecodable_to_radio")
            return
        which = t.WhichOneof("payload_variant")
        if which == "want_config_id":
            self.emu.count("handshakes")
            self.config(c, t.want_config_id)
        elif which == "heartbeat":
            self.emu.count("heartbeats")
            self.send_status(c, 0, 0)
        elif which == "packet":
            self.packet(c, t.packet)
        elif which == "disconnect":
            c.configured = False

    def config(self, c, nonce):
        self.send(c, my_info=mesh_pb2.MyNodeInfo(my_node_num=self.node, reboot_count=1, min_app_version=30200,
                                                 device_id=self.public_key[:16], pio_env="emulator",
                                                 nodedb_count=len(self.emu.devices)))
        self.send(c, node_info=self.node_info())
        self.send(c, metadata=mesh_pb2.DeviceMetadata(firmware_version="2.7.15.emulated", device_state_version=24, hasPKC=True))
        for i in range(8):
            ch = channel_pb2.Channel(index=i, role=channel_pb2.Channel.Role.PRIMARY if i == 0 else channel_pb2.Channel.Role.DISABLED)
            if i == 0:
                ch.settings.psk = bytes([1])   # the default key
            self.send(c, channel=ch)
        for f in config_pb2.Config.DESCRIPTOR.oneofs_by_name["payload_variant"].fields:
            cfg = config_pb2.Config()
            getattr(cfg, f.name).SetInParent()
            if f.name == "lora":
                cfg.lora.use_preset = True
                cfg.lora.modem_preset = config_pb2.Config.LoRaConfig.ModemPreset.Value(self.emu.preset)
                cfg.lora.region = config_pb2.Config.LoRaConfig.RegionCode.Value(self.emu.region)
                cfg.lora.hop_limit = 3
                cfg.lora.tx_enabled = True
            self.send(c, config=cfg)
        for f in module_config_pb2.ModuleConfig.DESCRIPTOR.oneofs_by_name["payload_variant"].fields:
            mc = module_config_pb2.ModuleConfig()
            getattr(mc, f.name).SetInParent()
            self.send(c, moduleConfig=mc)
        for d in self.emu.devices:
            if d is not self:
                self.send(c, node_info=d.node_info())
        c.configured = True
        self.send(c, config_complete_id=nonce)

    def packet(self, c, p):
        if p.WhichOneof("payload_variant") != "decoded":
            self.emu.count("not_decoded")
            return
        if len(p.decoded.payload) > MAX_PAYLOAD:
            self.emu.count("dropped_over_233")
            return
        if p.want_ack:
            self.emu.count("want_ack")
            if p.hop_limit == 0:
                p.hop_limit = 3
                self.emu.count("hop_limit_raised")
        if p.id == 0:
            p.id = random.randint(1, 0xFFFFFFFF)
        elif p.id in self.recent_ids:
            self.emu.count("repeated_id_ignored")
            return
        self.recent_ids = (self.recent_ids + [p.id])[-20:]
        if self.emu.crossing_status:
            self.emu.count("crossing_status")
            self.send_status(c, 0, 0)
            time.sleep(0.2)   # the packet still on its way: the client reads the crossing answer alone
        to_known = p.to != BROADCAST and any(d.node == p.to for d in self.emu.devices)
        limit = PKI_LIMIT if to_known else BROADCAST_LIMIT
        if len(p.decoded.payload) > limit:
            self.emu.count("too_large")
            self.send_status(c, TOO_LARGE, p.id)
            nak = mesh_pb2.MeshPacket(to=self.node, channel=p.channel, id=random.randint(1, 0xFFFFFFFF), rx_time=int(time.time()))
            setattr(nak, "from", self.node)
            nak.decoded.portnum = portnums_pb2.PortNum.ROUTING_APP
            nak.decoded.payload = mesh_pb2.Routing(error_reason=TOO_LARGE).SerializeToString()
            nak.decoded.request_id = p.id
            self.send(c, packet=nak)
            return
        with self.lock:
            full = len(self.queue) >= self.emu.slots
            if not full:
                self.queue.append(p)
                self.wake.notify()
            filled = len(self.queue) >= self.emu.slots
        if filled:
            self.emu.count("queue_filled")   # the client must now wait for a QueueStatus with free slots
        if full:
            self.emu.count("queue_overrun")
            self.send_status(c, 1, p.id)
            return
        self.emu.count("packets_queued")
        self.emu.record_packet(p)
        self.send_status(c, 0, p.id)

    def to_clients(self, **kw):
        with self.lock:
            clients = [c for c in self.clients if c.configured and not c.closed]
        for c in clients:
            self.send(c, **kw)
        return len(clients)

    def transmitter(self):
        """One packet on air at a time: LongFast airtime (scaled), then heard by the other devices."""
        while True:
            with self.lock:
                while not self.queue:
                    self.wake.wait()
                p = self.queue[0]
            size = len(p.decoded.payload) + 2 + 16 + 20   # bitfield, radio header, protobuf and MIC (approximate)
            time.sleep(longfast_airtime(size) * self.emu.time_scale)
            with self.lock:
                if not self.queue or self.queue[0] is not p:
                    continue   # unplugged meanwhile: the queue is gone
                self.queue.pop(0)
            self.emu.count("packets_on_air")
            self.emu.air(self, p)
            with self.status_lock:
                self.to_clients(queueStatus=self.queue_status(0, 0))

    def hear(self, src, p):
        q = mesh_pb2.MeshPacket()
        q.CopyFrom(p)
        setattr(q, "from", src.node)
        q.rx_time = int(time.time())
        q.rx_snr = 6.25
        q.rx_rssi = -71
        q.hop_start = p.hop_limit
        q.decoded.bitfield = 0
        if self.to_clients(packet=q) == 0:
            self.emu.count("heard_without_client")
        else:
            self.emu.count("packets_delivered")


class Emulator:
    def __init__(self, directory, n, time_scale, preset, region, slots=SLOTS, crossing_status=False):
        self.dir, self.time_scale, self.preset, self.region, self.slots = directory, time_scale, preset, region, slots
        self.crossing_status = crossing_status
        self.lock = threading.Lock()
        self.stats = {}
        self.payloads = {"max": 0, "hop_limits": [], "ports": []}
        nodes = random.sample(range(0x10000000, 0x7FFFFFFF), n)
        self.devices = []
        for i in range(n):
            self.devices.append(Device(self, i, nodes[i]))

    def count(self, key):
        with self.lock:
            self.stats[key] = self.stats.get(key, 0) + 1
            self.write_stats()

    def record_packet(self, p):
        with self.lock:
            self.payloads["max"] = max(self.payloads["max"], len(p.decoded.payload))
            for k, v in (("hop_limits", p.hop_limit), ("ports", p.decoded.portnum)):
                if v not in self.payloads[k]:
                    self.payloads[k].append(v)
            self.write_stats()

    def write_stats(self):
        tmp = os.path.join(self.dir, "stats.json.new")
        with open(tmp, "w") as f:
            json.dump({"counts": self.stats, "packets": self.payloads}, f)
        os.replace(tmp, os.path.join(self.dir, "stats.json"))

    def air(self, src, p):
        for d in self.devices:
            if d is src or not d.present:
                continue
            if p.to == BROADCAST or p.to == d.node:
                d.hear(src, p)

    def run(self):
        for d in self.devices:
            d.plug()
        self.write_stats()
        info = {"devices": [{"node": d.node, "serial": d.link, "tcp": d.tcp_port} for d in self.devices]}
        tmp = os.path.join(self.dir, "devices.json.new")
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, os.path.join(self.dir, "devices.json"))
        print(json.dumps(info), flush=True)
        for line in sys.stdin:
            words = line.split()
            if len(words) == 2 and words[0] in ("unplug", "replug"):
                d = self.devices[int(words[1])]
                if words[0] == "unplug":
                    d.unplug()
                    self.count("unplugs")
                else:
                    d.plug()
                    self.count("replugs")
            elif words:
                print(f"unknown command: {line.strip()}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    a = argparse.ArgumentParser(description="Emulated Meshtastic devices sharing one simulated channel.")
    a.add_argument("dir")
    a.add_argument("--devices", type=int, default=2)
    a.add_argument("--time-scale", type=float, default=0.02, help="airtime multiplier (1 = real LongFast)")
    a.add_argument("--preset", default="LONG_FAST")
    a.add_argument("--region", default="EU_868")
    a.add_argument("--slots", type=int, default=SLOTS, help="transmit queue slots (16 in the firmware; fewer fills it sooner)")
    a.add_argument("--crossing-status", action="store_true",
                   help="before each packet's own QueueStatus, one counted without it (a heartbeat's answer crossing it)")
    o = a.parse_args()
    os.makedirs(o.dir, exist_ok=True)
    Emulator(o.dir, o.devices, o.time_scale, o.preset, o.region, o.slots, o.crossing_status).run()
