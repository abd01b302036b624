#if canImport(Glibc)
import Glibc
#endif
import CLibSerialPort
import Foundation
import Logging

/// Serial line settings.
public struct SerialSettings: Sendable, Hashable {
    public enum Parity: String, Sendable { case none, odd, even }
    public enum FlowControl: String, Sendable { case none, rtsCts = "rts-cts", xonXoff = "xon-xoff" }
    public var baud: Int
    public var dataBits = 8
    public var parity = Parity.none
    public var stopBits = 1
    public var flowControl = FlowControl.none
    /// Drive DTR / RTS to this level after opening (nil: leave as the driver sets them). ESP32 boards reset
    /// when these toggle; RNodes on such boards want both left low.
    public var dtr: Bool? = nil
    public var rts: Bool? = nil
    public init(baud: Int) { self.baud = baud }
}

public enum SerialPort {
    /// Opens a serial device. USB and on-board UARTs go through libserialport; pseudo-terminals (Direwolf's KISS pty,
    /// socat, rfcomm), which libserialport cannot open, through a plain termios path. The log says which.
    public static func open(_ path: String, settings: SerialSettings, logger: Logger) throws(LinkError) -> ByteChannel {
        var isPTY = false
        // Stable names (/dev/serial/by-id/..., udev symlinks) resolve to the device libserialport knows.
        var device = path
        if let real = realpath(path, nil) {
            device = String(cString: real)
            free(real)
            isPTY = device.hasPrefix("/dev/pts/") || device == "/dev/ptmx"
        } else if !FileManager.default.fileExists(atPath: path) {
            throw .notFound(path)
        }
        if !isPTY {
            do {
                let ch = try LibSerialPortChannel(path: device, settings: settings)
                logger.info("serial port opened", metadata: ["port": "\(path)", "path": "libserialport", "baud": "\(settings.baud)"])
                return ch
            } catch .notFound(_) {
                // Not a device libserialport knows (no sysfs entry): fall through to termios.
            }
        }
        let ch = try Self.openTermios(path, settings: settings)
        logger.info("serial port opened", metadata: [
            "port": "\(path)", "path": isPTY ? "termios (pseudo-terminal)" : "termios (not known to libserialport)",
            "baud": "\(settings.baud)",
        ])
        return ch
    }

    /// flock(LOCK_EX | LOCK_NB) on the open device: nil when taken; otherwise closes `fd` and returns the error,
    /// naming the holder when another process has it.
    static func lockFailure(_ fd: Int32, path: String) -> LinkError? {
        switch ExclusiveLock.acquire(fd) {
        case .acquired: return nil
        case .held(let pid):
            Glibc.close(fd)
            return .held(path, pid: pid)
        case .failed(let why):
            Glibc.close(fd)
            return .io("\(path): cannot lock it for this relay alone (\(why))")
        }
    }

    /// EBUSY on open: another process opened the device with TIOCEXCL; name it if it holds our kind of lock too.
    static func busy(_ path: String) -> LinkError {
        ExclusiveLock.holder(ofPath: path).map { .held(path, pid: $0) } ?? .busy(path)
    }

    static func speed(_ baud: Int) -> speed_t? {
        let table: [Int: Int32] = [
            1200: B1200, 2400: B2400, 4800: B4800, 9600: B9600, 19200: B19200, 38400: B38400, 57600: B57600,
            115200: B115200, 230400: B230400, 460800: B460800, 500000: B500000, 921600: B921600, 1000000: B1000000,
        ]
        return table[baud].map { speed_t($0) }
    }

    /// A port path that names no device (a directory, a plain file): what to give instead.
    static func notADevice(_ path: String, _ what: String) -> String {
        "\(path) is \(what), not a serial port: give the device (e.g. /dev/ttyUSB0, or /dev/serial/by-id/...; `relay ports` lists them)"
    }

    static func openTermios(_ path: String, settings: SerialSettings) throws(LinkError) -> FDChannel {
        let fd = Glibc.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            switch errno {
            case ENOENT, ENXIO, ENODEV: throw .notFound(path)
            case EACCES, EPERM: throw .permissionDenied(path)
            case EBUSY: throw Self.busy(path)
            case EISDIR: throw .io(Self.notADevice(path, "a directory"))
            default: throw .io("\(path): \(String(cString: strerror(errno)))")
            }
        }
        // A plain file opens (and then reads as a line that went away, again and again): it is a wrong path.
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG {
            Glibc.close(fd)
            throw .io(Self.notADevice(path, "a plain file"))
        }
        // Exclusive before touching the line settings: a second relay must not change the first one's port.
        if let e = Self.lockFailure(fd, path: path) { throw e }
        if isatty(fd) == 1 {
            var t = termios()
            guard tcgetattr(fd, &t) == 0 else {
                Glibc.close(fd)
                throw .io("\(path): not a terminal")
            }
            cfmakeraw(&t)
            t.c_cflag |= tcflag_t(CLOCAL | CREAD)
            t.c_cflag &= ~(tcflag_t(CSIZE | PARENB | PARODD | CSTOPB) | tcflag_t(CRTSCTS))
            switch settings.dataBits {
            case 7: t.c_cflag |= tcflag_t(CS7)
            default: t.c_cflag |= tcflag_t(CS8)
            }
            if settings.parity != .none { t.c_cflag |= tcflag_t(PARENB) }
            if settings.parity == .odd { t.c_cflag |= tcflag_t(PARODD) }
            if settings.stopBits == 2 { t.c_cflag |= tcflag_t(CSTOPB) }
            if settings.flowControl == .rtsCts { t.c_cflag |= tcflag_t(CRTSCTS) }
            if settings.flowControl == .xonXoff { t.c_iflag |= tcflag_t(IXON | IXOFF) }
            withUnsafeMutableBytes(of: &t.c_cc) { cc in
                cc[Int(VMIN)] = 0
                cc[Int(VTIME)] = 0
            }
            guard let sp = Self.speed(settings.baud) else {
                Glibc.close(fd)
                throw .invalidSpec("unsupported baud rate \(settings.baud)")
            }
            cfsetispeed(&t, sp)
            cfsetospeed(&t, sp)
            _ = tcsetattr(fd, TCSANOW, &t)
            // TIOCEXCL: a second opener gets EBUSY instead of stealing bytes (except root, hence the flock too).
            _ = ioctl(fd, UInt(TIOCEXCL))
        }
        return FDChannel(fd: fd, kind: "termios", label: path)
    }
}

/// A serial port through libserialport.
public final class LibSerialPortChannel: ByteChannel, @unchecked Sendable {
    /// The open port; the descriptor holding the device's flock is closed with it (see `InUse`).
    private let shared: InUse<OpaquePointer>
    public let path: String
    public var kind: String { "libserialport" }

    init(path: String, settings: SerialSettings) throws(LinkError) {
        self.path = path
        var p: OpaquePointer?
        guard sp_get_port_by_name(path, &p) == SP_OK, let port = p else { throw .notFound(path) }
        // The lock first, on a descriptor of our own, so that a port another relay holds is not even opened by
        // libserialport (which sets the line up as it opens).
        let lockFD = Glibc.open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard lockFD >= 0 else {
            let code = errno
            sp_free_port(port)
            switch code {
            case EACCES, EPERM: throw .permissionDenied(path)
            case EBUSY: throw SerialPort.busy(path)
            case ENOENT, ENODEV, ENXIO: throw .notFound(path)
            default: throw .io("\(path): cannot open (\(String(cString: strerror(code))))")
            }
        }
        if let e = SerialPort.lockFailure(lockFD, path: path) {
            sp_free_port(port)
            throw e
        }
        let r = sp_open(port, SP_MODE_READ_WRITE)
        guard r == SP_OK else {
            let code = sp_last_error_code()
            sp_free_port(port)
            Glibc.close(lockFD)
            switch code {
            case EACCES, EPERM: throw .permissionDenied(path)
            case EBUSY: throw SerialPort.busy(path)
            case ENOENT, ENODEV, ENXIO: throw .notFound(path)
            default: throw .io("\(path): cannot open (\(String(cString: strerror(code))))")
            }
        }
        var handle: Int32 = -1
        if sp_get_port_handle(port, &handle) == SP_OK, handle >= 0 { _ = ioctl(handle, UInt(TIOCEXCL)) }
        // A setting the port refuses (a baud rate the adapter cannot do, no RTS line) is an error at start: a line
        // set up otherwise than asked damages every frame, or none arrive.
        let steps: [(String, () -> sp_return)] = [
            ("\(settings.baud) baud", { sp_set_baudrate(port, Int32(settings.baud)) }),
            ("\(settings.dataBits) data bits", { sp_set_bits(port, Int32(settings.dataBits)) }),
            ("parity \(settings.parity)", { sp_set_parity(port, settings.parity == .none ? SP_PARITY_NONE : settings.parity == .odd ? SP_PARITY_ODD : SP_PARITY_EVEN) }),
            ("\(settings.stopBits) stop bits", { sp_set_stopbits(port, Int32(settings.stopBits)) }),
            ("flow control \(settings.flowControl)", { sp_set_flowcontrol(port, settings.flowControl == .none ? SP_FLOWCONTROL_NONE : settings.flowControl == .rtsCts ? SP_FLOWCONTROL_RTSCTS : SP_FLOWCONTROL_XONXOFF) }),
        ] + (settings.dtr.map { d in [("DTR \(d ? "on" : "off")", { sp_set_dtr(port, d ? SP_DTR_ON : SP_DTR_OFF) })] } ?? [])
          + (settings.rts.map { r in [("RTS \(r ? "on" : "off")", { sp_set_rts(port, r ? SP_RTS_ON : SP_RTS_OFF) })] } ?? [])
        for (what, step) in steps {
            let r = step()
            guard r == SP_OK else {
                let detail: String
                switch r {
                case SP_ERR_SUPP: detail = "not supported by this port"
                case SP_ERR_ARG: detail = "not a value this port takes"
                default:
                    let m = sp_last_error_message()
                    detail = m.map { String(cString: $0) } ?? "error \(r.rawValue)"
                    if let m { sp_free_error_message(m) }
                }
                sp_close(port)
                sp_free_port(port)
                Glibc.close(lockFD)
                throw .io("\(path): cannot set \(what) (\(detail)); check the settings in the link spec")
            }
        }
        self.shared = InUse(port, release: { p in
            sp_close(p)
            sp_free_port(p)
            Glibc.close(lockFD)
        })
    }

    public func close() { self.shared.close() }

    public func read(max: Int, timeout: Double) throws(LinkError) -> [UInt8] {
        guard let p = self.shared.borrow() else { throw .closed(self.path) }
        defer { self.shared.giveBack() }
        var buf = [UInt8](repeating: 0, count: max)
        // Wait for the first byte, then take what is there.
        let n = sp_blocking_read_next(p, &buf, max, UInt32(Swift.max(1, timeout * 1000))).rawValue
        if n < 0 { throw .closed(self.path) }
        return Array(buf[0..<Int(n)])
    }

    public func write(_ bytes: [UInt8], timeout: Double) throws(LinkError) {
        guard let p = self.shared.borrow() else { throw .closed(self.path) }
        defer { self.shared.giveBack() }
        let n = sp_blocking_write(p, bytes, bytes.count, UInt32(Swift.max(1, timeout * 1000))).rawValue
        if n < 0 { throw .closed(self.path) }
        if Int(n) < bytes.count { throw .timeout("\(self.path): write timed out (device not taking data)") }
    }
}

/// A serial port as enumerated, with a guess of what is attached.
public struct SerialPortInfo: Sendable, Hashable, Codable {
    public var name: String
    public var description: String
    public var transport: String
    public var usbVendor: UInt16?
    public var usbProduct: UInt16?
    public var manufacturer: String?
    public var product: String?
    public var serialNumber: String?
    /// What the USB identity suggests: the chip or board, and the modem families that use it.
    public var guess: String?

    public var usbID: String? {
        guard let v = self.usbVendor, let p = self.usbProduct else { return nil }
        return String(format: "%04x:%04x", v, p)
    }
}

public enum SerialPorts {
    /// Every serial port libserialport can see, with USB identity where there is one.
    public static func list() -> [SerialPortInfo] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        guard sp_list_ports(&list) == SP_OK, let ports = list else { return [] }
        defer { sp_free_port_list(ports) }
        var out: [SerialPortInfo] = []
        var i = 0
        while let p = ports[i] {
            i += 1
            func s(_ c: UnsafeMutablePointer<CChar>?) -> String? { c.map { String(cString: $0) } }
            let transport = sp_get_port_transport(p)
            var info = SerialPortInfo(
                name: s(sp_get_port_name(p)) ?? "?", description: s(sp_get_port_description(p)) ?? "",
                transport: transport == SP_TRANSPORT_USB ? "usb" : transport == SP_TRANSPORT_BLUETOOTH ? "bluetooth" : "native")
            if transport == SP_TRANSPORT_USB {
                var vid: Int32 = 0
                var pid: Int32 = 0
                if sp_get_port_usb_vid_pid(p, &vid, &pid) == SP_OK {
                    info.usbVendor = UInt16(truncatingIfNeeded: vid)
                    info.usbProduct = UInt16(truncatingIfNeeded: pid)
                }
                info.manufacturer = s(sp_get_port_usb_manufacturer(p))
                info.product = s(sp_get_port_usb_product(p))
                info.serialNumber = s(sp_get_port_usb_serial(p))
            }
            info.guess = ModemGuess.guess(vendor: info.usbVendor, product: info.usbProduct, productName: info.product)
            out.append(info)
        }
        return out.sorted { $0.name < $1.name }
    }
}

/// Recognises common USB serial chips and boards by vendor:product id.
public enum ModemGuess {
    public static let known: [(UInt16, UInt16?, String)] = [
        (0x10C4, 0xEA60, "Silicon Labs CP210x: RNode or Meshtastic boards (T-Beam, Heltec), many UART LoRa and telemetry radios"),
        (0x1A86, 0x7523, "WCH CH340: UART LoRa modules (E22/E32 adapters), SiK radios, cheap ESP32 boards"),
        (0x1A86, 0x55D4, "WCH CH9102: LilyGO T-Beam / T3 (RNode or Meshtastic), ESP32 boards"),
        (0x1A86, 0x55D3, "WCH CH343: ESP32 boards"),
        (0x0403, 0x6001, "FTDI FT232R: hardware KISS TNCs, telemetry radios (SiK), cables"),
        (0x0403, 0x6015, "FTDI FT231X: SiK telemetry radios, cables"),
        (0x0403, 0x6010, "FTDI FT2232: cables"),
        (0x0403, 0x6014, "FTDI FT232H: cables"),
        (0x303A, 0x1001, "ESP32-S3 native USB: RNode or Meshtastic (Heltec V3, T3-S3, Station G2)"),
        (0x303A, nil, "Espressif native USB: ESP32 boards (RNode or Meshtastic)"),
        (0x239A, 0x8029, "nRF52 (Adafruit bootloader): RAK4631 WisBlock (RNode or Meshtastic)"),
        (0x239A, nil, "nRF52 CDC (Adafruit): RAK4631, T-Echo and other nRF52 boards (RNode or Meshtastic)"),
        (0x2E8A, nil, "Raspberry Pi RP2040 CDC: NinoTNC (some), RP2040 boards"),
        (0x04D8, 0x00DD, "Microchip MCP2221: NinoTNC"),
        (0x26AC, nil, "3D Robotics: SiK telemetry radio"),
    ]

    public static func guess(vendor: UInt16?, product: UInt16?, productName: String?) -> String? {
        if let v = vendor {
            if let hit = self.known.first(where: { $0.0 == v && $0.1 == product }) { return hit.2 }
            if let hit = self.known.first(where: { $0.0 == v && $0.1 == nil }) { return hit.2 }
        }
        if let n = productName?.lowercased() {
            if n.contains("rnode") { return "RNode" }
            if n.contains("meshtastic") { return "Meshtastic (meshtastic:PATH)" }
            if n.contains("tnc") { return "KISS TNC" }
        }
        return nil
    }
}
