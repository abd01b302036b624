import Foundation

/// What a link tells the engine about itself.
public struct LinkProperties: Sendable, Hashable {
    public enum Duplex: String, Sendable, Hashable { case full, half }

    /// Largest Courier packet the link carries in one frame.
    public var mtu: Int
    /// Nominal bit rate on the medium (nil: fast enough not to matter, e.g. TCP).
    public var bitsPerSecond: Int?
    public var duplex: Duplex
    /// Whether the medium already rejects damaged frames (AX.25 FCS, LoRa CRC, TCP); Courier's own CRC and AEAD
    /// tag check them anyway.
    public var mediumChecksFrames: Bool
    public var airtime: Airtime

    public init(mtu: Int, bitsPerSecond: Int?, duplex: Duplex, mediumChecksFrames: Bool, airtime: Airtime) {
        self.mtu = mtu
        self.bitsPerSecond = bitsPerSecond
        self.duplex = duplex
        self.mediumChecksFrames = mediumChecksFrames
        self.airtime = airtime
    }

    /// Seconds the medium is busy sending a frame of `bytes` (the Courier packet; link framing is added here).
    public func airtime(bytes: Int) -> Double { self.airtime.seconds(bytes: bytes) }
}

/// How long a frame occupies the medium.
public enum Airtime: Sendable, Hashable {
    /// No airtime budget applies (TCP).
    case none
    /// An asynchronous serial line: 10 bits a byte (8N1) plus `overhead` framing bytes.
    case serial(baud: Int, overhead: Int)
    /// AFSK packet radio (e.g. 1200 baud Bell 202) through a KISS TNC: key-up delay, HDLC with ~5% bit stuffing,
    /// AX.25 header and FCS, tail.
    case afsk(baud: Int, txDelay: Double, txTail: Double, overhead: Int)
    /// LoRa (Semtech SX127x/SX126x time on air); `framing` bytes the modem adds to each frame (RNode: 1).
    case lora(LoRaParameters, framing: Int)

    public func seconds(bytes: Int) -> Double {
        switch self {
        case .none: return 0
        case .serial(let baud, let overhead): return Double((bytes + overhead) * 10) / Double(baud)
        case .afsk(let baud, let txDelay, let txTail, let overhead):
            // Flags, AX.25 addresses/control/PID and FCS are in `overhead`; HDLC bit stuffing adds up to 1 bit in 6.
            let bits = Double((bytes + overhead) * 8) * 1.05
            return txDelay + bits / Double(baud) + txTail
        case .lora(let p, let framing): return p.timeOnAir(payload: bytes + framing)
        }
    }
}

/// LoRa modulation settings.
public struct LoRaParameters: Sendable, Hashable {
    public var spreadingFactor: Int      // 5-12
    public var bandwidthHz: Int          // e.g. 125_000
    public var codingRate: Int           // 5-8 for 4/5..4/8
    public var preambleSymbols: Int = 8
    public var explicitHeader = true
    public var crc = true
    /// Low data rate optimisation: nil chooses it as the radios do, when a symbol lasts 16 ms or more.
    public var lowDataRateOptimize: Bool? = nil

    public init(spreadingFactor: Int, bandwidthHz: Int, codingRate: Int, preambleSymbols: Int = 8,
                explicitHeader: Bool = true, crc: Bool = true, lowDataRateOptimize: Bool? = nil) {
        self.spreadingFactor = spreadingFactor
        self.bandwidthHz = bandwidthHz
        self.codingRate = codingRate
        self.preambleSymbols = preambleSymbols
        self.explicitHeader = explicitHeader
        self.crc = crc
        self.lowDataRateOptimize = lowDataRateOptimize
    }

    /// Seconds per symbol: 2^SF / BW.
    public var symbolTime: Double { Double(1 << self.spreadingFactor) / Double(self.bandwidthHz) }

    /// Semtech's time-on-air formula (SX1276 datasheet 4.1.1.7; AN1200.13):
    /// T = (Npreamble + 4.25) Ts + (8 + max(ceil((8 PL - 4 SF + 28 + 16 CRC - 20 IH) / (4 (SF - 2 DE))) (CR + 4), 0)) Ts
    public func timeOnAir(payload: Int) -> Double {
        let ts = self.symbolTime
        let sf = Double(self.spreadingFactor)
        let de = (self.lowDataRateOptimize ?? (ts >= 0.016)) ? 1.0 : 0.0
        let ih = self.explicitHeader ? 0.0 : 1.0
        let crc = self.crc ? 1.0 : 0.0
        let cr = Double(self.codingRate - 4)
        let num = 8 * Double(payload) - 4 * sf + 28 + 16 * crc - 20 * ih
        let symbols = 8 + max((num / (4 * (sf - 2 * de))).rounded(.up) * (cr + 4), 0)
        return (Double(self.preambleSymbols) + 4.25) * ts + symbols * ts
    }

    /// Nominal bit rate: SF × BW / 2^SF × 4 / CR.
    public var bitsPerSecond: Int {
        Int(Double(self.spreadingFactor) * Double(self.bandwidthHz) / Double(1 << self.spreadingFactor) * 4 / Double(self.codingRate))
    }
}
