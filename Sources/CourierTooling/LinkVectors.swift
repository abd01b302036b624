/// JSON shapes of the link-layer and code vectors (SPEC 12.2, 18, 19): framing.json, kiss.json, codes.json,
/// announces.json.
extension Vectors {
    /// framing.json: framed serial (COBS, CRC-32C) and the TCP length prefix.
    public struct FramingFile: Codable, Sendable {
        public var description: String
        public var crc32c: [CRCVector]
        public var frames: [FrameVector]
        public var streams: [StreamVector]
        public var tcp: [FrameVector]
        public init(description: String, crc32c: [CRCVector], frames: [FrameVector], streams: [StreamVector], tcp: [FrameVector]) {
            self.description = description
            self.crc32c = crc32c
            self.frames = frames
            self.streams = streams
            self.tcp = tcp
        }
    }

    /// CRC-32C of some bytes, as a number (8 hex digits).
    public struct CRCVector: Codable, Sendable {
        public var inputHex: String
        public var crc: String
        public init(inputHex: String, crc: String) {
            self.inputHex = inputHex
            self.crc = crc
        }
    }

    /// One packet and the bytes that carry it.
    public struct FrameVector: Codable, Sendable {
        public var name: String
        public var packetHex: String
        public var frameHex: String
        /// KISS data frames: the TNC port and, for AX.25, the source station.
        public var port: Int?
        public var callsign: String?
        public init(name: String, packetHex: String, frameHex: String, port: Int? = nil, callsign: String? = nil) {
            self.name = name
            self.packetHex = packetHex
            self.frameHex = frameHex
            self.port = port
            self.callsign = callsign
        }
    }

    /// Bytes as a receiver reads them from the line: the packets it passes up, and how many frames it drops.
    public struct StreamVector: Codable, Sendable {
        public var name: String
        public var streamHex: String
        public var packetsHex: [String]
        public var dropped: Int
        /// KISS: the receiver's port and, for AX.25, its station.
        public var port: Int?
        public var callsign: String?
        public init(name: String, streamHex: String, packetsHex: [String], dropped: Int, port: Int? = nil, callsign: String? = nil) {
            self.name = name
            self.streamHex = streamHex
            self.packetsHex = packetsHex
            self.dropped = dropped
            self.port = port
            self.callsign = callsign
        }
    }

    /// kiss.json: KISS data frames (with and without AX.25), the parameter frames sent at start, receiving, RNode.
    public struct KISSFile: Codable, Sendable {
        public var description: String
        public var frames: [FrameVector]
        public var parameters: [ParameterVector]
        public var streams: [StreamVector]
        public var rnode: [FrameVector]
        public init(description: String, frames: [FrameVector], parameters: [ParameterVector], streams: [StreamVector], rnode: [FrameVector]) {
            self.description = description
            self.frames = frames
            self.parameters = parameters
            self.streams = streams
            self.rnode = rnode
        }
    }

    /// The KISS parameter frames a relay writes when it opens a `kiss:` link, in order.
    public struct ParameterVector: Codable, Sendable {
        public var name: String
        public var txDelay: Int
        public var persistence: Int
        public var slotTime: Int
        public var txTail: Int
        public var framesHex: [String]
        public init(name: String, txDelay: Int, persistence: Int, slotTime: Int, txTail: Int, framesHex: [String]) {
            self.name = name
            self.txDelay = txDelay
            self.persistence = persistence
            self.slotTime = slotTime
            self.txTail = txTail
            self.framesHex = framesHex
        }
    }

    /// codes.json: join codes and identity codes.
    public struct CodesFile: Codable, Sendable {
        public var description: String
        public var joinCodes: [JoinCodeVector]
        public var identityCodes: [IdentityCodeVector]
        public var invalid: [InvalidCodeVector]
        public init(description: String, joinCodes: [JoinCodeVector], identityCodes: [IdentityCodeVector], invalid: [InvalidCodeVector]) {
            self.description = description
            self.joinCodes = joinCodes
            self.identityCodes = identityCodes
            self.invalid = invalid
        }
    }

    public struct JoinCodeVector: Codable, Sendable {
        public var networkKey: String
        public var open: Bool
        public var code: String
        public init(networkKey: String, open: Bool, code: String) {
            self.networkKey = networkKey
            self.open = open
            self.code = code
        }
    }

    public struct IdentityCodeVector: Codable, Sendable {
        public var name: String
        public var signingPublic: String
        public var agreementPublic: String
        public var code: String
        public init(name: String, signingPublic: String, agreementPublic: String, code: String) {
            self.name = name
            self.signingPublic = signingPublic
            self.agreementPublic = agreementPublic
            self.code = code
        }
    }

    /// A code a reader MUST refuse (`kind`: `join` or `identity`).
    public struct InvalidCodeVector: Codable, Sendable {
        public var kind: String
        public var code: String
        public var why: String
        public init(kind: String, code: String, why: String) {
            self.kind = kind
            self.code = code
            self.why = why
        }
    }

    /// announces.json: the announce records a node sends at a given MTU (SPEC 9.2), each alone in its packet.
    public struct AnnounceVector: Codable, Sendable {
        public var name: String
        public var mtu: Int
        public var capabilities: Int
        public var signingKey: String
        public var agreementKey: String
        public var nameUtf8: String?
        public var recordsHex: [String]
        public init(name: String, mtu: Int, capabilities: Int, signingKey: String, agreementKey: String, nameUtf8: String?, recordsHex: [String]) {
            self.name = name
            self.mtu = mtu
            self.capabilities = capabilities
            self.signingKey = signingKey
            self.agreementKey = agreementKey
            self.nameUtf8 = nameUtf8
            self.recordsHex = recordsHex
        }
    }
}
