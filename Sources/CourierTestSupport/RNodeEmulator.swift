import CourierLinks
import Foundation

/// An emulator of the RNode firmware's serial protocol (Framing.h, the serial callback in RNode_Firmware.ino):
/// answers detect and queries, echoes radio settings, and puts DATA frames "on the air" to its peers, preceded by
/// RSSI and SNR reports as the firmware sends them. No hardware was available; this is how the driver is tested.
public final class RNodeEmulator: @unchecked Sendable {
    public let pty = PTY()
    public var peers: [RNodeEmulator] = []
    /// Report this spreading factor whatever is asked (to provoke a radio state mismatch).
    public var forcedSF: UInt8? = nil
    public var silent = false
    /// What this RNode reports with each packet it receives: RSSI in dBm (-157 to 98) and SNR in dB (quarter steps).
    public var reports: (rssi: Int, snr: Double) = (-90, 6)
    private let lock = NSLock()
    private var stopped = false
    private var radioOn = false
    public private(set) var configured: [UInt8: [UInt8]] = [:]

    public init() {}

    public func start() {
        Thread { [self] in
            var decoder = KISSDecoder()
            while !self.isStopped {
                let bytes = self.pty.read(timeout: 0.1)
                if bytes.isEmpty || self.silent { continue }
                for (type, data) in decoder.feed(bytes[...]) { self.handle(type, data) }
            }
        }.start()
    }

    public var isStopped: Bool { self.lock.lock(); defer { self.lock.unlock() }; return self.stopped }
    public func stop() { self.lock.lock(); self.stopped = true; self.lock.unlock() }

    private func reply(_ type: UInt8, _ data: [UInt8]) { self.pty.write(KISS.frame(type: type, data)) }

    private func handle(_ type: UInt8, _ data: [UInt8]) {
        switch type {
        case 0x08 where data == [0x73]: self.reply(0x08, [0x46])
        case 0x50: self.reply(0x50, [0x01, 0x34])
        case 0x48: self.reply(0x48, [0x80])
        case 0x49: self.reply(0x49, [0x81])
        case 0x01, 0x02, 0x03, 0x05:
            self.lock.lock(); self.configured[type] = data; self.lock.unlock()
            self.reply(type, data)
        case 0x04:
            self.lock.lock(); self.configured[type] = data; self.lock.unlock()
            self.reply(type, self.forcedSF.map { [$0] } ?? data)
        case 0x06:
            self.lock.lock(); self.radioOn = data == [0x01]; self.lock.unlock()
            self.reply(0x06, data)
        case 0x00:
            // A radio that is off sends nothing (the firmware drops it).
            guard self.isOn else { break }
            for p in self.peers where p.isOn {
                p.reply(0x23, [UInt8(p.reports.rssi + 157)])  // RSSI report: dBm + 157
                p.reply(0x24, [UInt8(bitPattern: Int8(p.reports.snr * 4))])  // SNR report: quarter dB, signed
                p.reply(0x00, data)
            }
            self.reply(0x0F, [0x01])  // ready for the next frame
        default: break
        }
    }

    /// The board reboots after a radio error, as the firmware does after a modem timeout: it reports the error and
    /// its reset, and comes back with the radio off and no settings.
    public func resetAfterError(_ code: UInt8 = 0x06) {
        self.lock.lock()
        self.radioOn = false
        self.configured = [:]
        self.lock.unlock()
        self.reply(0x90, [code])
        self.reply(0x55, [0xF8])
    }

    public var isOn: Bool { self.lock.lock(); defer { self.lock.unlock() }; return self.radioOn }
}
