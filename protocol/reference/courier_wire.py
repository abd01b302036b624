"""Courier wire protocol, version 1: an independent Python implementation.

Written from protocol/SPEC.md alone (no look at the Swift reference), to show that the
specification is sufficient. Section numbers in comments refer to SPEC.md.

Dependencies: Python 3.11 standard library, the `cryptography` package (only APIs present
in version 38: ChaCha20Poly1305, Ed25519 signing, X25519, HKDF, hashes) and the `zstd`
command-line tool (1.5.4) for compression (section 7), called through subprocess. Ed25519
verification is done here in pure Python, in the cofactorless form section 6.12 specifies.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Iterable, Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = os.path.dirname(os.path.abspath(__file__))
DICTIONARY_PATHS = {1: os.path.join(HERE, "..", "dictionaries", "courier-1.zdict")}

# ---------------------------------------------------------------------------------------------
# Errors (section 16: the classes of the reference decoder; names are ours)
# ---------------------------------------------------------------------------------------------


class WireError(Exception):
    """kind is one of: truncated, invalidVarint, invalidValue, unsupportedVersion,
    unsupportedFeature, trailingBytes, tooLarge, authenticationFailed, unknownSender,
    badSignature, decompressionFailed, unknownDictionary, decryptionFailed; and "replay" for
    the replay window of Receiver (4.8, an engine rule, not a decoder error)."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


# ---------------------------------------------------------------------------------------------
# Limits (section 1.9)
# ---------------------------------------------------------------------------------------------

MIN_MTU = 64
MAX_PACKET = 70_000
MAX_RECORD_LENGTH = 70_000
MAX_CONTENT = 65_536
MAX_BUNDLE = 66_048
MAX_FRAGMENTS = 4_096
MAX_FRAGMENT_INDEX = 4_095
MAX_ACK_RECEIVED = 4_096
MAX_ACK_BITMAP = 512
MAX_NAME = 32
MAX_EXTENSIONS = 16
MAX_EXTENSION_VALUE = 1_024
MAX_WINDOW = 1 << 17
OVERHEAD_ORDINARY = 25
OVERHEAD_ANNOUNCE = 29
TAG = 16
SALT = b"courier/v1"

# ---------------------------------------------------------------------------------------------
# Varints (section 1.4)
# ---------------------------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise WireError("invalidValue", f"varint out of range: {value}")
    out = bytearray()
    while True:
        g = value & 0x7F
        value >>= 7
        if value:
            out.append(g | 0x80)
        else:
            out.append(g)
            return bytes(out)


def vsize(value: int) -> int:
    return len(encode_varint(value))


def decode_varint(data: bytes, pos: int = 0, what: str = "varint", max_bits: int = 32) -> tuple[int, int]:
    """Returns (value, new position). The reference algorithm of section 1.4."""
    result = shift = n = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated", what)
        b = data[pos]
        pos += 1
        n += 1
        g = b & 0x7F
        if shift >= max_bits:
            raise WireError("invalidVarint", f"{what}: more than {max_bits} bits")
        if shift > 0 and (g >> (max_bits - shift)) != 0:
            raise WireError("invalidVarint", f"{what}: more than {max_bits} bits")
        result |= g << shift
        if b & 0x80 == 0:
            if b == 0 and n > 1:
                raise WireError("invalidVarint", f"{what}: not in shortest form")
            return result, pos
        shift += 7


class Reader:
    """Bounds-checked sequential reader over one field's bytes (11.2: every length is checked)."""

    def __init__(self, data: bytes):
        self.data = bytes(data)
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise WireError("truncated", what)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def varint(self, what: str, limit: Optional[int] = None) -> int:
        value, self.pos = decode_varint(self.data, self.pos, what)
        if limit is not None and value > limit:
            raise WireError("invalidValue", f"{what}: {value} above {limit}")
        return value

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out


def u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


# ---------------------------------------------------------------------------------------------
# Identities (section 2) and key derivation (section 3)
# ---------------------------------------------------------------------------------------------


def _raw_public(key) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def compute_node_id(signing_public: bytes, agreement_public: bytes) -> bytes:
    return hashlib.sha256(b"courier/v1/node" + signing_public + agreement_public).digest()[:16]


def short_id_of(node_id: bytes) -> int:
    return int.from_bytes(node_id[:4], "big")


def short_id_text(short_id: int) -> str:
    return f"{short_id:08x}"


@dataclass
class Identity:
    """A node's two key pairs (2.1). signing_seed: Ed25519 seed; agreement_private: X25519 key."""

    signing_seed: bytes
    agreement_private: bytes

    @property
    def signing_public(self) -> bytes:
        return _raw_public(Ed25519PrivateKey.from_private_bytes(self.signing_seed).public_key())

    @property
    def agreement_public(self) -> bytes:
        return _raw_public(X25519PrivateKey.from_private_bytes(self.agreement_private).public_key())

    @property
    def node_id(self) -> bytes:
        return compute_node_id(self.signing_public, self.agreement_public)

    @property
    def short_id(self) -> int:
        return short_id_of(self.node_id)

    def public(self) -> "PublicNode":
        return PublicNode(self.signing_public, self.agreement_public)

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.signing_seed).sign(message)


@dataclass(frozen=True)
class PublicNode:
    """What a node learns about another from its announces: the two public keys."""

    signing_public: bytes
    agreement_public: bytes

    @property
    def node_id(self) -> bytes:
        return compute_node_id(self.signing_public, self.agreement_public)

    @property
    def short_id(self) -> int:
        return short_id_of(self.node_id)


def hkdf_sha256(ikm: bytes, info: bytes, salt: bytes = SALT, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def derive(network_key: bytes, label: bytes, context: bytes = b"") -> bytes:
    """3.1: HKDF-SHA256(IKM = network key, salt = "courier/v1", info = label || context, L = 32)."""
    if len(network_key) != 32:
        raise WireError("invalidValue", "network key must be 32 bytes")
    return hkdf_sha256(network_key, label + context)


def packet_key(network_key: bytes, node_id: bytes) -> bytes:
    return derive(network_key, b"packet", node_id)


def announce_key(network_key: bytes) -> bytes:
    return derive(network_key, b"announce")


def fingerprint(network_key: bytes) -> str:
    return derive(network_key, b"fingerprint")[:4].hex()


def group_id(name: str) -> int:
    """2.4"""
    return int.from_bytes(hashlib.sha256(b"courier/v1/group" + name.encode("utf-8")).digest()[:2], "big")


COURIER_EPOCH = 1_704_067_200


def courier_time(unix_seconds: int) -> int:
    """1.6"""
    return max(0, min((unix_seconds - COURIER_EPOCH) // 60, (1 << 24) - 1))


# ---------------------------------------------------------------------------------------------
# Bundle ids and digests (6.5, 6.11)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleId:
    origin: int
    created: int
    sequence: int

    def text(self) -> str:
        return f"{self.origin:08x}.{self.created}.{self.sequence}"

    _TEXT = re.compile(r"([0-9A-Fa-f]{8})\.([0-9]+)\.([0-9]+)", re.ASCII)

    @staticmethod
    def parse(text: str) -> "BundleId":
        """6.11 text form: exactly 8 hex digits (either case), '.', decimal created, '.', decimal
        sequence; no sign, spaces or other characters (Python's int() alone would allow them)."""
        m = BundleId._TEXT.fullmatch(text)
        if not m:
            raise WireError("invalidValue", f"bundle id text form: {text!r}")
        origin, created, sequence = int(m[1], 16), int(m[2]), int(m[3])
        if created >= 1 << 24 or sequence >= 1 << 32:
            raise WireError("invalidValue", f"bundle id out of range: {text!r}")
        return BundleId(origin, created, sequence)

    def wire(self) -> bytes:
        return u(self.origin, 4) + u(self.created, 3) + encode_varint(self.sequence)

    @staticmethod
    def read(r: Reader) -> "BundleId":
        return BundleId(r.uint(4, "id origin"), r.uint(3, "id created"), r.varint("id sequence"))

    def fixed(self) -> bytes:
        return u(self.origin, 4) + u(self.created, 3) + u(self.sequence, 4)

    def digest(self) -> int:
        return int.from_bytes(hashlib.sha256(self.fixed()).digest()[:4], "big")


IDENTITY_ANSWER_WANTED = 0x01
IDENTITY_MAX_NAME = 32


def encode_identity_content(node: "PublicNode", name: Optional[str] = None, wants_answer: bool = False) -> bytes:
    """6.8 kind 7: flags (bit 0: Q, answer wanted) || signing key (32) || agreement key (32) || name (0-32 bytes)."""
    n = (name or "").encode("utf-8")[:IDENTITY_MAX_NAME]
    return bytes([IDENTITY_ANSWER_WANTED if wants_answer else 0]) + node.signing_public + node.agreement_public + n


def decode_identity_content(content: bytes) -> tuple["PublicNode", Optional[str], bool]:
    """6.8 kind 7: (keys, name or None, answer wanted). Reserved flag bits are ignored."""
    r = Reader(content)
    flags = r.uint(1, "identity flags")
    node = PublicNode(r.take(32, "identity signing key"), r.take(32, "identity agreement key"))
    rest = r.rest()
    if len(rest) > IDENTITY_MAX_NAME:
        raise WireError("tooLarge", f"identity name {len(rest)} > {IDENTITY_MAX_NAME} bytes")
    return node, (rest.decode("utf-8", errors="replace") if rest else None), bool(flags & IDENTITY_ANSWER_WANTED)


def verify_identity(bundle: "Bundle", content: bytes) -> tuple["PublicNode", Optional[str], bool]:
    """9.1: an identity bundle teaches keys only if they are its origin's (their short id is the bundle's origin)
    and the bundle is signed by the signing key it carries. Raises WireError otherwise."""
    if bundle.kind != KIND_IDENTITY:
        raise WireError("invalidValue", "not an identity bundle")
    if bundle.e2e:
        raise WireError("invalidValue", "an identity bundle is never end-to-end encrypted")
    node, name, wants = decode_identity_content(content)
    if node.short_id != bundle.origin:
        raise WireError("invalidValue", "identity keys are not the origin's")
    if verify_bundle(bundle, [node]) != node:
        raise WireError("invalidValue", "identity bundle not signed by the key it carries")
    return node, name, wants


FAILURE_REASONS = {1: "expired", 2: "refused", 3: "unreadable", 4: "evicted"}


def encode_failure_content(entries: list[tuple[int, "BundleId"]]) -> bytes:
    """6.8 kind 8: entries of reason (u8) || bundle id (wire form), concatenated."""
    return b"".join(bytes([reason]) + bid.wire() for reason, bid in entries)


def decode_failure_content(content: bytes) -> list[tuple[int, "BundleId"]]:
    """6.8 kind 8: must parse as whole entries (reason, id). Unknown reason codes are kept (shown as numbers)."""
    r = Reader(content)
    out = []
    while r.remaining():
        reason = r.uint(1, "failure reason")
        out.append((reason, BundleId.read(r)))
    return out


PACT_EXTENSION_TYPE = 4
PACT_TYPES = {1: "create", 2: "join", 3: "amend", 4: "withdraw", 5: "request", 6: "pledge", 7: "escalation", 8: "delivered"}
PACT_MAX_NAME, PACT_MAX_MEMBERS, PACT_MAX_PLEDGE = 32, 32, 200


def encode_pact_record(rec: dict) -> bytes:
    """6.15: a pact record (the value of extension type 4) from a dict with `type` and its fields, as decode_pact_record
    returns: `pact` (text id, absent for create), `pactName`, `respondWithin`, `members` (8-hex-digit short ids),
    `pledge`, `deadline`, `request` (text id), `at`, `unmet`, `member`."""
    code = {v: k for k, v in PACT_TYPES.items()}[rec["type"]]
    out = bytes([1, code])
    if code != 1:
        out += BundleId.parse(rec["pact"]).wire()

    def text(s: str) -> bytes:
        b = s.encode("utf-8")
        return bytes([len(b)]) + b

    def members(m: list) -> bytes:
        return bytes([len(m)]) + b"".join(u(int(x, 16), 4) for x in m)

    if code == 1:
        out += text(rec["pactName"]) + encode_varint(rec["respondWithin"]) + members(rec["members"]) + text(rec["pledge"])
    elif code == 2:
        out += text(rec["pledge"])
    elif code == 3:
        w, pl = rec.get("respondWithin"), rec.get("pledge")
        out += bytes([(1 if w is not None else 0) | (2 if pl is not None else 0)])
        out += (encode_varint(w) if w is not None else b"") + (text(pl) if pl is not None else b"")
    elif code == 5:
        out += encode_varint(rec["deadline"])
    elif code == 6:
        out += BundleId.parse(rec["request"]).wire() + encode_varint(rec["at"])
    elif code == 7:
        out += BundleId.parse(rec["request"]).wire() + members(rec["unmet"])
    elif code == 8:
        out += BundleId.parse(rec["request"]).wire() + u(int(rec["member"], 16), 4) + encode_varint(rec["at"])
    return out


def decode_pact_record(value: bytes) -> dict:
    """6.15: total; raises WireError for anything the section does not allow (another version or type, a field out
    of range, text that is not UTF-8, bytes left over)."""
    r = Reader(value)
    version = r.uint(1, "pact version")
    if version != 1:
        raise WireError("unsupportedVersion", f"pact record version {version}")
    code = r.uint(1, "pact type")
    if code not in PACT_TYPES:
        raise WireError("unsupportedFeature", f"pact record type {code}")
    rec: dict = {"type": PACT_TYPES[code]}
    if code != 1:
        rec["pact"] = BundleId.read(r).text()

    def text(what: str, lo: int, hi: int) -> str:
        n = r.uint(1, what)
        if not lo <= n <= hi:
            raise WireError("invalidValue", f"{what}: {n} bytes, allowed {lo}-{hi}")
        try:
            return r.take(n, what).decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("invalidValue", f"{what}: not UTF-8")

    def members(what: str, lo: int) -> list:
        n = r.uint(1, what)
        if not lo <= n <= PACT_MAX_MEMBERS:
            raise WireError("invalidValue", f"{what}: {n} members, allowed {lo}-{PACT_MAX_MEMBERS}")
        return [f"{r.uint(4, what):08x}" for _ in range(n)]

    def within() -> int:
        w = r.varint("pact respond-within")
        if w < 1:
            raise WireError("invalidValue", "pact respond-within: at least 1 second")
        return w

    if code == 1:
        rec["pactName"] = text("pact name", 1, PACT_MAX_NAME)
        rec["respondWithin"] = within()
        rec["members"] = members("pact members", 1)
        rec["pledge"] = text("pact pledge", 0, PACT_MAX_PLEDGE)
    elif code == 2:
        rec["pledge"] = text("pact pledge", 0, PACT_MAX_PLEDGE)
    elif code == 3:
        flags = r.uint(1, "pact amend flags")
        if flags & ~3:
            raise WireError("unsupportedFeature", f"pact amend flags {flags:#x}")
        if flags & 1:
            rec["respondWithin"] = within()
        if flags & 2:
            rec["pledge"] = text("pact pledge", 0, PACT_MAX_PLEDGE)
    elif code == 5:
        rec["deadline"], r.pos = decode_varint(r.data, r.pos, "pact deadline", max_bits=64)
    elif code == 6:
        rec["request"] = BundleId.read(r).text()
        rec["at"], r.pos = decode_varint(r.data, r.pos, "pact at", max_bits=64)
    elif code == 7:
        rec["request"] = BundleId.read(r).text()
        rec["unmet"] = members("pact unmet", 0)
    elif code == 8:
        rec["request"] = BundleId.read(r).text()
        rec["member"] = f"{r.uint(4, 'pact member'):08x}"
        rec["at"], r.pos = decode_varint(r.data, r.pos, "pact at", max_bits=64)
    if r.remaining():
        raise WireError("trailingBytes", f"pact record: {r.remaining()} bytes left over")
    return rec


def decode_receipt_content(content: bytes) -> list[BundleId]:
    """6.8: receipt content is wire-form bundle ids, concatenated; must parse as whole entries.
    An empty receipt decodes to no ids (engines ignore it)."""
    r = Reader(content)
    ids = []
    while r.remaining():
        ids.append(BundleId.read(r))
    return ids


# ---------------------------------------------------------------------------------------------
# Bundles (section 6)
# ---------------------------------------------------------------------------------------------

DEST_NODE, DEST_GROUP, DEST_EVERYONE = 0, 1, 2
COMP_NONE, COMP_ZSTD, COMP_ZSTD_DICT = 0, 1, 2
COMPRESSION_NAMES = {COMP_NONE: "none", COMP_ZSTD: "zstd"}

# 6.8 kinds: code -> (default class, default lifetime in minutes, signed by default)
KIND_DEFAULTS = {
    0: (0, 1_440, True),     # alert
    1: (1, 4_320, False),    # aid request
    2: (1, 4_320, False),    # aid offer / pledge
    3: (2, 20_160, False),   # grievance
    4: (3, 43_200, False),   # minutes / bulletin
    5: (2, 20_160, False),   # text
    6: (2, 2_880, True),     # delivery receipt
    7: (2, 10_080, True),    # identity (a node's keys and name; key request / answer)
    8: (2, 2_880, True),     # failure notice
    9: (3, 43_200, True),    # federation dictionary (7.6)
}
KIND_IDENTITY, KIND_FAILURE, KIND_DICTIONARY = 7, 8, 9
EXT_DICTIONARY = 5
UNKNOWN_KIND_DEFAULTS = (3, 43_200, False)
DEFAULT_HOP_LIMIT = 8


def kind_defaults(kind: int) -> tuple[int, int, bool]:
    return KIND_DEFAULTS.get(kind, UNKNOWN_KIND_DEFAULTS)


@dataclass
class Bundle:
    kind: int
    origin: int
    created: int
    sequence: int
    lifetime: int
    dest_type: int = DEST_EVERYONE
    destination: Optional[int] = None       # node short id (u32) or group id (u16)
    hop_limit: int = DEFAULT_HOP_LIMIT
    compression: int = COMP_NONE
    dictionary_id: Optional[int] = None      # present iff compression == 2
    bare: bool = False                       # 7.2 bare block form: dictionary byte 00, then the id
    signed: bool = False                     # S
    e2e: bool = False                        # E
    respond_by: Optional[int] = None         # R
    reference: Optional[BundleId] = None     # F
    priority: Optional[int] = None           # P: explicit class override, None when absent
    extensions: Optional[list[tuple[int, bytes]]] = None   # X
    body: bytes = b""
    signature: Optional[bytes] = None        # 64 bytes iff signed

    @property
    def id(self) -> BundleId:
        return BundleId(self.origin, self.created, self.sequence)

    @property
    def priority_class(self) -> int:
        return self.priority if self.priority is not None else kind_defaults(self.kind)[0]

    def header(self, hop_limit: Optional[int] = None) -> bytes:
        """Every byte before the body (6.1), rebuilt from the fields."""
        hop = self.hop_limit if hop_limit is None else hop_limit
        if not (0 <= hop <= 15 and 0 <= self.kind <= 15):
            raise WireError("invalidValue", "hop limit and kind are 4 bits")
        if self.dest_type not in (DEST_NODE, DEST_GROUP, DEST_EVERYONE):
            raise WireError("unsupportedFeature", "destination type")
        if self.compression not in (COMP_NONE, COMP_ZSTD, COMP_ZSTD_DICT):
            raise WireError("unsupportedFeature", "compression")
        more = 0
        if self.respond_by is not None:
            more |= 0x80
        if self.reference is not None:
            more |= 0x40
        if self.extensions is not None:
            more |= 0x20
        if self.priority is not None:
            more |= 0x10 | ((self.priority & 3) << 2)
        b1 = (self.dest_type << 6) | (self.compression << 4)
        b1 |= (0x08 if self.signed else 0) | (0x04 if self.e2e else 0) | (0x02 if more else 0)
        out = bytearray([(hop << 4) | self.kind, b1])
        if more:
            out.append(more)
        out += u(self.origin, 4) + u(self.created, 3)
        out += encode_varint(self.sequence) + encode_varint(self.lifetime)
        if self.dest_type == DEST_NODE:
            out += u(self.destination, 4)
        elif self.dest_type == DEST_GROUP:
            out += u(self.destination, 2)
        if self.respond_by is not None:
            out += encode_varint(self.respond_by)
        if self.reference is not None:
            out += self.reference.wire()
        if self.compression == COMP_ZSTD_DICT:
            if self.bare:
                out.append(0)
            out.append(self.dictionary_id)
        if self.extensions is not None:
            out += encode_varint(len(self.extensions))
            for ext_type, value in self.extensions:
                out += encode_varint(ext_type) + encode_varint(len(value)) + value
        return bytes(out)

    def encode(self) -> bytes:
        out = self.header() + self.body + (self.signature or b"")
        if len(out) > MAX_BUNDLE:
            raise WireError("tooLarge", f"bundle {len(out)} > {MAX_BUNDLE}")
        return out

    def protected_header(self) -> bytes:
        """The header with the hop-limit nibble zeroed: end-to-end AAD (3.5) and signed (6.12)."""
        return self.header(hop_limit=0)

    def signing_input(self) -> bytes:
        return b"courier/v1/bundle" + self.protected_header() + self.body


def decode_bundle(data: bytes) -> Bundle:
    """Sections 6.1-6.7. Does not verify, decrypt or decompress."""
    if len(data) > MAX_BUNDLE:
        raise WireError("tooLarge", f"bundle {len(data)} > {MAX_BUNDLE}")
    r = Reader(data)
    b0 = r.uint(1, "bundle byte 0")
    b1 = r.uint(1, "bundle byte 1")
    dest_type = b1 >> 6
    compression = (b1 >> 4) & 3
    if dest_type == 3:
        raise WireError("unsupportedFeature", "destination type 3")
    if compression == 3:
        raise WireError("unsupportedFeature", "compression 3")
    if b1 & 0x01:
        raise WireError("unsupportedFeature", "bundle byte 1 reserved bit")
    more = 0
    if b1 & 0x02:
        more = r.uint(1, "more-flags")
        if more == 0:
            raise WireError("invalidValue", "more-flags present but empty")
        if more & 0x03:
            raise WireError("unsupportedFeature", "more-flags reserved bits")
        if not more & 0x10 and more & 0x0C:
            raise WireError("invalidValue", "priority bits without P")
    b = Bundle(kind=b0 & 0x0F, origin=0, created=0, sequence=0, lifetime=0)
    b.hop_limit = b0 >> 4
    b.dest_type, b.compression = dest_type, compression
    b.signed, b.e2e = bool(b1 & 0x08), bool(b1 & 0x04)
    b.origin = r.uint(4, "origin")
    b.created = r.uint(3, "created")
    b.sequence = r.varint("sequence")
    b.lifetime = r.varint("lifetime")
    if b.lifetime == 0:
        raise WireError("invalidValue", "lifetime 0")
    if dest_type == DEST_NODE:
        b.destination = r.uint(4, "destination node")
    elif dest_type == DEST_GROUP:
        b.destination = r.uint(2, "destination group")
    if more & 0x80:
        b.respond_by = r.varint("respond-by")
    if more & 0x40:
        b.reference = BundleId.read(r)
    if compression == COMP_ZSTD_DICT:
        b.dictionary_id = r.uint(1, "dictionary id")
        if b.dictionary_id == 0:
            # 7.2: dictionary byte 0 is the bare block form; the dictionary's id follows (1-255).
            b.bare = True
            b.dictionary_id = r.uint(1, "dictionary id (bare block)")
            if b.dictionary_id == 0:
                raise WireError("invalidValue", "a bare block names dictionary 1-255, not 0")
    if more & 0x20:
        count = r.varint("extension count", MAX_EXTENSIONS)
        if count == 0:
            raise WireError("invalidValue", "extension count 0")
        b.extensions = []
        for _ in range(count):
            ext_type = r.varint("extension type")
            length = r.varint("extension length", MAX_EXTENSION_VALUE)
            b.extensions.append((ext_type, r.take(length, "extension value")))
    if more & 0x10:
        b.priority = (more >> 2) & 3
    rest = r.rest()
    if b.signed:
        if len(rest) < 64:
            raise WireError("truncated", "signature")
        b.body, b.signature = rest[:-64], rest[-64:]
    else:
        b.body = rest
    if b.e2e and len(b.body) < TAG:
        raise WireError("truncated", "end-to-end tag")
    return b


# ---------------------------------------------------------------------------------------------
# Ed25519 verification, RFC 8032 cofactorless (6.12), in pure Python so that the exact equation
# is the one the spec names rather than whatever the linked library does. Signing uses the
# `cryptography` package (signatures are deterministic, so any correct signer gives the same bytes).
# ---------------------------------------------------------------------------------------------

ED_P = 2 ** 255 - 19
ED_L = 2 ** 252 + 27742317777372353535851937790883648493
ED_D = -121665 * pow(121666, ED_P - 2, ED_P) % ED_P
_ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)


def ed_add(p1, p2):
    """Point addition in extended coordinates (X, Y, Z, T), RFC 8032 5.1.4."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % ED_P
    b = (y1 + x1) * (y2 + x2) % ED_P
    c = 2 * t1 * t2 * ED_D % ED_P
    d = 2 * z1 * z2 % ED_P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % ED_P, g * h % ED_P, f * g % ED_P, e * h % ED_P)


def ed_neg(p):
    x, y, z, t = p
    return (-x % ED_P, y, z, -t % ED_P)


def ed_mul(s: int, p):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = ed_add(q, p)
        p = ed_add(p, p)
        s >>= 1
    return q


def ed_encode(p) -> bytes:
    x, y, z, _ = p
    zi = pow(z, ED_P - 2, ED_P)
    x, y = x * zi % ED_P, y * zi % ED_P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def ed_decode(data: bytes):
    """A point from 32 bytes, or None if the bytes are not on the curve. Like ref10 and BoringSSL,
    the 255-bit y is used as is (a y >= p is not refused) and a zero x takes either sign bit."""
    if len(data) != 32:
        return None
    n = int.from_bytes(data, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    y %= ED_P
    u, v = (y * y - 1) % ED_P, (ED_D * y * y + 1) % ED_P
    x = u * pow(v, 3, ED_P) * pow(u * pow(v, 7, ED_P), (ED_P - 5) // 8, ED_P) % ED_P
    if v * x * x % ED_P != u:
        x = x * _ED_SQRT_M1 % ED_P
        if v * x * x % ED_P != u:
            return None
    if x & 1 != sign:
        x = -x % ED_P
    return (x, y, 1, x * y % ED_P)


ED_B = ed_decode(bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666"))


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """6.12: RFC 8032 cofactorless: S < L, A decodes to a curve point, and
    encode([S]B - [k]A) equals the 32 bytes of R, k = SHA-512(R || A || M) mod L."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = ed_decode(public_key)
    if a is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= ED_L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % ED_L
    return ed_encode(ed_add(ed_mul(s, ED_B), ed_neg(ed_mul(k, a)))) == signature[:32]


def verify_bundle(bundle: Bundle, candidates: Iterable[PublicNode]) -> Optional[PublicNode]:
    """6.12 / 2.3 rule 3: the candidate (same short id as the origin) whose key verifies, or None."""
    if not bundle.signed or bundle.signature is None:
        return None
    message = bundle.signing_input()
    for node in candidates:
        if node.short_id != bundle.origin:
            continue
        if ed25519_verify(node.signing_public, bundle.signature, message):
            return node
    return None


# ---------------------------------------------------------------------------------------------
# End-to-end encryption (3.5)
# ---------------------------------------------------------------------------------------------


def e2e_key(own_agreement_private: bytes, peer_agreement_public: bytes,
            origin_node_id: bytes, recipient_node_id: bytes) -> bytes:
    try:
        shared = X25519PrivateKey.from_private_bytes(own_agreement_private).exchange(
            X25519PublicKey.from_public_bytes(peer_agreement_public))
    except ValueError as e:     # OpenSSL refuses an all-zero output itself
        raise WireError("decryptionFailed", f"X25519: {e}")
    if shared == bytes(32):
        raise WireError("decryptionFailed", "X25519 output is all zero")
    return hkdf_sha256(shared, b"e2e" + origin_node_id + recipient_node_id)


def e2e_nonce(created: int, sequence: int) -> bytes:
    return u(created, 3) + u(sequence, 4) + bytes(5)


def e2e_open(bundle: Bundle, recipient: Identity, origin_candidates: Iterable[PublicNode]) -> bytes:
    """Returns the compressed content. The recipient must be the destination; each candidate
    origin with the bundle's origin short id is tried, the AEAD tag decides (2.3 rule 4)."""
    if not bundle.e2e:
        return bundle.body
    if bundle.dest_type != DEST_NODE or bundle.destination != recipient.short_id:
        raise WireError("decryptionFailed", "this node is not the recipient")
    aad, nonce = bundle.protected_header(), e2e_nonce(bundle.created, bundle.sequence)
    for origin in origin_candidates:
        if origin.short_id != bundle.origin:
            continue
        try:
            key = e2e_key(recipient.agreement_private, origin.agreement_public, origin.node_id, recipient.node_id)
            return ChaCha20Poly1305(key).decrypt(nonce, bundle.body, aad)
        except (InvalidTag, WireError):
            continue
    raise WireError("decryptionFailed", "no candidate origin key opens the body")


SIGNATURE_REQUIRED = {0, 6, 7, 8}   # 6.8: alert, receipt, identity, failure notice


def origin_proof(bundle: Bundle, recipient: Optional[Identity],
                 candidates: Iterable[PublicNode]) -> Optional[str]:
    """6.12: what proves the bundle's origin to this node, given the keys it knows for origins.
    "signature": S = 1 and a candidate's signing key verifies it. "end-to-end": S = 0, E = 1, a kind whose
    signature is not required, this node (recipient) is its destination and the end-to-end tag verifies with a
    candidate's keys (3.5). None: not proven here (unsigned, or a relay that is not the recipient)."""
    candidates = list(candidates)
    if bundle.signed:
        return "signature" if verify_bundle(bundle, candidates) is not None else None
    if not bundle.e2e or bundle.kind in SIGNATURE_REQUIRED or recipient is None:
        return None
    try:
        e2e_open(bundle, recipient, candidates)
    except WireError:
        return None
    return "end-to-end"


# ---------------------------------------------------------------------------------------------
# Compression (section 7): magicless zstd frames, via the zstd command-line tool
# ---------------------------------------------------------------------------------------------

ZSTD_MAGIC = bytes.fromhex("28b52ffd")


def zstd_frame_info(frame: bytes) -> dict:
    """Walks one magicless RFC 8878 frame structurally (headers and block sizes only) so that
    "exactly one frame" and the window limit (7.2 decoder rules 3 and 4) are enforced here,
    independently of the decompressor. Any valid frame shape is accepted (7.2 decoder rule 1):
    single-segment (the window is then the content size), with a content size, a checksum or
    a dictionary id."""
    r = Reader(frame)
    if not frame:
        raise WireError("decompressionFailed", "empty body")
    try:
        fhd = r.uint(1, "frame header descriptor")
        fcs_flag, single, reserved = fhd >> 6, (fhd >> 5) & 1, (fhd >> 3) & 1
        checksum, did_flag = (fhd >> 2) & 1, fhd & 3
        if reserved:
            raise WireError("decompressionFailed", "frame header reserved bit")
        window = None
        if not single:
            wd = r.uint(1, "window descriptor")
            base = 1 << (10 + (wd >> 3))
            window = base + (base // 8) * (wd & 7)
        dict_id = int.from_bytes(r.take([0, 1, 2, 4][did_flag], "dictionary id")[::-1], "big") if did_flag else None
        fcs_size = [1 if single else 0, 2, 4, 8][fcs_flag]
        content_size = None
        if fcs_size:
            content_size = int.from_bytes(r.take(fcs_size, "content size")[::-1], "big")
            if fcs_size == 2:
                content_size += 256
        if single:
            window = content_size
        if window > MAX_WINDOW:
            raise WireError("decompressionFailed", f"window {window} > {MAX_WINDOW}")
        while True:
            bh = int.from_bytes(r.take(3, "block header")[::-1], "big")
            last, btype, bsize = bh & 1, (bh >> 1) & 3, bh >> 3
            if btype == 3:
                raise WireError("decompressionFailed", "reserved block type")
            r.take(1 if btype == 1 else bsize, "block")
            if last:
                break
        if checksum:
            r.take(4, "content checksum")
    except WireError as e:
        if e.kind == "truncated":
            raise WireError("decompressionFailed", f"truncated frame ({e.detail})")
        raise
    if r.remaining():
        raise WireError("decompressionFailed", f"{r.remaining()} bytes after the frame")
    return {"window": window, "content_size": content_size, "checksum": bool(checksum),
            "dictionary_id": dict_id, "window_descriptor": None if single else frame[1]}


def _dictionary_path(dict_id: Optional[int]) -> Optional[str]:
    if dict_id is None:
        return None
    path = DICTIONARY_PATHS.get(dict_id)
    if path is None or not os.path.exists(path):
        raise WireError("unknownDictionary", str(dict_id))
    return path


def zstd_internal_dictionary_id(dict_id: int) -> int:
    """The id stored inside a formatted zstd dictionary file (RFC 8878 5: after the magic,
    4 bytes little-endian). Irrelevant on the wire; only used for 7.2 decoder rule 1."""
    with open(_dictionary_path(dict_id), "rb") as f:
        head = f.read(8)
    return int.from_bytes(head[4:8], "little")


def zstd_decompress(frame: bytes, dict_id: Optional[int]) -> bytes:
    """Decodes one magicless frame, output bounded to 65,536 bytes (7.2)."""
    dict_path = _dictionary_path(dict_id)
    info = zstd_frame_info(frame)
    if info["dictionary_id"]:   # an id of 0 means none (as in libzstd)
        own = zstd_internal_dictionary_id(dict_id) if dict_id is not None else None
        if info["dictionary_id"] != own:
            raise WireError("decompressionFailed",
                            f"frame names dictionary id {info['dictionary_id']}, the dictionary is {own}")
    with tempfile.NamedTemporaryFile(suffix=".zst", delete=False) as f:
        f.write(ZSTD_MAGIC + frame)
        name = f.name
    try:
        args = ["zstd", "-d", "-c", "-q", "--memory=128KB"]
        if dict_path:
            args += ["-D", dict_path]
        proc = subprocess.Popen(args + [name], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = bytearray()
        while len(out) <= MAX_CONTENT:
            chunk = proc.stdout.read(MAX_CONTENT + 1 - len(out))
            if not chunk:
                break
            out += chunk
        if len(out) > MAX_CONTENT:
            proc.kill()
            proc.wait()
            raise WireError("decompressionFailed", "output over 65,536 bytes")
        err = proc.stderr.read()
        if proc.wait() != 0:
            raise WireError("decompressionFailed", err.decode(errors="replace").strip())
        return bytes(out)
    finally:
        os.unlink(name)


def zstd_compress(content: bytes, dict_id: Optional[int], level: int = 19) -> bytes:
    """A magicless frame per 7.2: no content size, no checksum, no dictionary id, window <= 2^17.
    The input is given as a FILE (known size): `zstd -19 --no-check --no-content-size --no-dictID
    [-D dict] FILE`, then the 4-byte magic is stripped (7.2, 12.4). libzstd then sizes the window
    from the content size like ZSTD_compress2 does; from a pipe it would declare a larger window,
    which 7.2 does not allow (so that is never done here)."""
    dict_path = _dictionary_path(dict_id)
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(content)
        name = f.name
    try:
        args = ["zstd", "-q", "-c", f"-{level}", "--no-check", "--no-content-size", "--no-dictID"]
        if dict_path:
            args += ["-D", dict_path]
        out = subprocess.run(args + [name], capture_output=True, check=True).stdout
        if not out.startswith(ZSTD_MAGIC):
            raise WireError("invalidValue", "zstd did not produce a zstd frame")
        frame = out[4:]
        info = zstd_frame_info(frame)
        if info["content_size"] is not None or info["checksum"] or info["dictionary_id"] is not None \
                or info["window_descriptor"] is None:
            raise WireError("invalidValue", "zstd did not produce the frame header of the 7.2 table")
        return frame
    finally:
        os.unlink(name)


def zstd_cli_window_log(content_size: int, dictionary: bool) -> int:
    """7.2 / 12.4: the window log libzstd 1.5.4 declares at level 19 for a known content size:
    max(10, ceil(log2(size))), the attached dictionary not counted. libzstd attaches a dictionary
    only for content up to 8,192 bytes at this level; above, it copies it and counts its size."""
    size = content_size + (65_536 if dictionary and content_size > 8_192 else 0)
    return min(17, max(10, (size - 1).bit_length()))


def compress(content: bytes, dictionaries: Iterable[int] = (1,)) -> tuple[int, Optional[int], bytes]:
    """7.5: the smallest of raw, zstd with dictionary 1, zstd without (>= 512 bytes or no
    dictionary); strictly smaller wins, ties go to the earlier. Returns (code, dict id, body).
    dictionaries=() is an encoder with no dictionary: the smallest of raw and code 1."""
    if len(content) > MAX_CONTENT:
        raise WireError("tooLarge", f"content {len(content)} > {MAX_CONTENT}")
    best = (COMP_NONE, None, content)
    if not content:
        return best
    have_dict = 1 in dictionaries and os.path.exists(DICTIONARY_PATHS[1])
    if have_dict:
        frame = zstd_compress(content, 1)
        if len(frame) < len(best[2]):
            best = (COMP_ZSTD_DICT, 1, frame)
    if len(content) >= 512 or not have_dict:
        frame = zstd_compress(content, None)
        if len(frame) < len(best[2]):
            best = (COMP_ZSTD, None, frame)
    return best


def bare_block_frame(block: bytes) -> bytes:
    """7.2: the magicless frame around a bare block: frame header 00 38 (no flags, window 2^17), then the
    block header (Last_Block 1, Block_Type 2 compressed, Block_Size the block's length), then the block."""
    if not block:
        raise WireError("decompressionFailed", "empty bare block")
    if len(block) > 128 * 1024:
        raise WireError("decompressionFailed", "bare block above 128 KiB")
    h = (len(block) << 3) | (2 << 1) | 1
    return bytes([0x00, 0x38]) + h.to_bytes(3, "little") + block


def decompress(compression: int, dict_id: Optional[int], body: bytes, bare: bool = False) -> bytes:
    """7.2/7.3: the 65,536-byte content limit is applied here, when the content is read, not by
    decode_bundle (6.1)."""
    if compression == COMP_ZSTD_DICT and bare:
        return zstd_decompress(bare_block_frame(body), dict_id)
    if compression == COMP_NONE:
        if len(body) > MAX_CONTENT:
            raise WireError("tooLarge", f"raw content {len(body)} > {MAX_CONTENT}")
        return body
    if compression == COMP_ZSTD:
        return zstd_decompress(body, None)
    if compression == COMP_ZSTD_DICT:
        return zstd_decompress(body, dict_id)
    raise WireError("unsupportedFeature", "compression 3")


# 7.6 Federation dictionaries -----------------------------------------------------------------------

def dictionary_fingerprint(dictionary: bytes) -> int:
    """7.6: the first two bytes of SHA-256 of the dictionary, big-endian."""
    return int.from_bytes(hashlib.sha256(dictionary).digest()[:2], "big")


def decode_dictionary_label(value: bytes) -> tuple[int, int]:
    """6.6 extension type 5: id (u8, 2-255) || version (varint, 32 bits); nothing may follow."""
    r = Reader(value)
    dict_id = r.uint(1, "dictionary id")
    version = r.varint("dictionary version")
    if r.remaining():
        raise WireError("trailingBytes", f"dictionary label: {r.remaining()}")
    if dict_id < 2:
        raise WireError("invalidValue", "federation dictionaries are numbered 2-255")
    return dict_id, version


def encode_dictionary_label(dict_id: int, version: int) -> bytes:
    return u(dict_id, 1) + encode_varint(version)


def read_dictionary_bundle(bundle: Bundle, origin_candidates: Iterable[PublicNode]) -> tuple[int, int, bytes]:
    """7.6: a dictionary bundle (kind 9) as a node takes it in: signed by its origin (a known key), exactly one
    extension of type 5, content a formatted zstd dictionary. Returns (id, version, dictionary)."""
    if bundle.kind != KIND_DICTIONARY:
        raise WireError("invalidValue", "not a dictionary bundle")
    if verify_bundle(bundle, origin_candidates) is None:
        raise WireError("badSignature", "a dictionary bundle must be signed by its origin")
    labels = [v for t, v in (bundle.extensions or []) if t == EXT_DICTIONARY]
    if len(labels) != 1:
        raise WireError("invalidValue", "a dictionary bundle carries exactly one extension of type 5")
    dict_id, version = decode_dictionary_label(labels[0])
    dictionary = read_content(bundle)
    if not 256 <= len(dictionary) <= MAX_CONTENT or dictionary[:4] != b"\x37\xa4\x30\xec":
        raise WireError("invalidValue", "not a zstd dictionary of 256-65,536 bytes")
    return dict_id, version, dictionary


def hold_dictionary(dict_id: int, dictionary: bytes) -> None:
    """Puts a federation dictionary where decompress() finds it under its wire id (a file, as the zstd CLI needs)."""
    f = tempfile.NamedTemporaryFile(prefix=f"courier-{dict_id}-", suffix=".zdict", delete=False)
    f.write(dictionary)
    f.close()
    DICTIONARY_PATHS[dict_id] = f.name


def compression_name(bundle: Bundle) -> str:
    if bundle.compression == COMP_ZSTD_DICT and bundle.bare:
        return f"zstd-block-{bundle.dictionary_id}"
    if bundle.compression == COMP_ZSTD_DICT:
        return f"zstd-dict-{bundle.dictionary_id}"
    return COMPRESSION_NAMES[bundle.compression]


def read_content(bundle: Bundle, recipient: Optional[Identity] = None,
                 origin_candidates: Iterable[PublicNode] = ()) -> bytes:
    """6.14 steps 4-5: decrypt (if E) and decompress. E = 1 with a group or everyone destination
    fails here (3.5), although decode_bundle accepted the bundle."""
    if bundle.e2e and recipient is None:
        raise WireError("decryptionFailed", "end-to-end body and no recipient key")
    compressed = e2e_open(bundle, recipient, origin_candidates) if bundle.e2e else bundle.body
    return decompress(bundle.compression, bundle.dictionary_id, compressed, bundle.bare)


# ---------------------------------------------------------------------------------------------
# Making a bundle (6.13)
# ---------------------------------------------------------------------------------------------


def make_bundle(origin: Identity, kind: int, content: bytes, created: int, sequence: int, *,
                dest_type: int = DEST_EVERYONE, destination: Optional[int] = None,
                lifetime: Optional[int] = None, hop_limit: int = DEFAULT_HOP_LIMIT,
                priority: Optional[int] = None, respond_by: Optional[int] = None,
                reference: Optional[BundleId] = None, sign: Optional[bool] = None,
                recipient: Optional[PublicNode] = None,
                extensions: Optional[list[tuple[int, bytes]]] = None,
                compressed: Optional[tuple[int, Optional[int], bytes]] = None,
                dictionaries: Iterable[int] = (1,)) -> Bundle:
    """recipient: end-to-end encrypt to this node (destination must be its short id).
    extensions: (type, value) pairs, written in this order (6.6).
    compressed: use this (code, dict id, body) instead of running the compressor.
    dictionaries: the dictionaries the encoder has; () is an encoder without any (7.5)."""
    default_class, default_lifetime, default_signed = kind_defaults(kind)
    if len(content) > MAX_CONTENT:
        raise WireError("tooLarge", f"content {len(content)} > {MAX_CONTENT}")
    if not 0 <= hop_limit <= 15:
        raise WireError("invalidValue", "hop limit above 15")
    lifetime = default_lifetime if lifetime is None else lifetime
    if lifetime < 1:
        raise WireError("invalidValue", "lifetime 0")
    if recipient is not None and (dest_type != DEST_NODE or destination != recipient.short_id):
        raise WireError("invalidValue", "end-to-end only to the node the destination names")
    if extensions is not None:
        if not 1 <= len(extensions) <= MAX_EXTENSIONS or any(len(v) > MAX_EXTENSION_VALUE for _, v in extensions):
            raise WireError("invalidValue", "extension limits (6.6)")
    code, dict_id, compressed_body = compressed if compressed is not None else compress(content, dictionaries)
    b = Bundle(kind=kind, origin=origin.short_id, created=created, sequence=sequence, lifetime=lifetime,
               dest_type=dest_type, destination=destination, hop_limit=hop_limit,
               compression=code, dictionary_id=dict_id,
               signed=default_signed if sign is None else sign, e2e=recipient is not None,
               respond_by=respond_by, reference=reference,
               priority=None if priority is None or priority == default_class else priority,
               extensions=extensions)
    if recipient is not None:
        key = e2e_key(origin.agreement_private, recipient.agreement_public, origin.node_id, recipient.node_id)
        b.body = ChaCha20Poly1305(key).encrypt(e2e_nonce(created, sequence), compressed_body, b.protected_header())
    else:
        b.body = compressed_body
    if b.signed:
        b.signature = origin.sign(b.signing_input())
    b.encode()  # size check
    return b


def unknown_critical_extensions(bundle: Bundle, known_types: Iterable[int] = ()) -> list[int]:
    """6.6: odd extension types this node does not know (version 1 defines no types)."""
    known = set(known_types)
    return [t for t, _ in bundle.extensions or [] if t % 2 == 1 and t not in known]


def deliverable(bundle: Bundle, known_extension_types: Iterable[int] = ()) -> bool:
    """6.14 step 6: no unknown critical extension, and not an identity (kind 7, read by the engine, 9.1).
    A bundle that is not deliverable is still stored and forwarded unchanged. Unknown kinds (10-15) are
    delivered, uninterpreted (6.8)."""
    return bundle.kind != KIND_IDENTITY and not unknown_critical_extensions(bundle, known_extension_types)


def content_is_text(bundle: Bundle) -> bool:
    """6.8: the content of kinds 0-5 is text; receipts (6) are bundle ids, identities (7) keys and a name,
    failure notices (8) reasons and bundle ids; unknown kinds (10-15) are shown only as bytes, never as text
    or as a known kind."""
    return bundle.kind <= 5


# ---------------------------------------------------------------------------------------------
# Records (section 5)
# ---------------------------------------------------------------------------------------------

T_PADDING, T_BUNDLE, T_FRAGMENT, T_ACK, T_ANNOUNCE, T_SUMMARY, T_DICTIONARIES, T_RECEIPT_PARTS, T_BUNDLE_RUN, T_NEIGHBOURS, \
    T_COPY_BUDGETS = range(11)
RESERVED_FLAGS = {T_BUNDLE: 0x00, T_FRAGMENT: 0x06, T_ACK: 0x06, T_ANNOUNCE: 0x00, T_SUMMARY: 0x06, T_DICTIONARIES: 0x04,
                  T_RECEIPT_PARTS: 0x06, T_BUNDLE_RUN: 0x04, T_NEIGHBOURS: 0x06, T_COPY_BUDGETS: 0x07}
RUN_CUT, RUN_REST = 0x01, 0x02  # 5.12: run flags C (ends with the head of a cut bundle) and R (begins with a rest)


@dataclass
class BundleRecord:
    bundle: bytes
    next_hop: Optional[int] = None
    transfer: Optional[int] = None
    # 5.3 compact form: sent in a packet from this short id (its origin) when the bundle allows it; decoded compact
    # records carry the packet's sender here, and `bundle` is always the whole bundle.
    compact_from: Optional[int] = None
    # 5.11: may go in a bundle run (with compact_from, next hop and transfer); decoded run records have it set.
    in_run: bool = False


CAP_COMPACT = 0x08  # 5.6 capability bit 3
CAP_RUNS = 0x10  # 5.6 capability bit 4
CAP_CUTS = 0x20  # 5.6 capability bit 5 (5.12)


@dataclass
class RunPiece:
    """5.12: a piece of a bundle cut across two packets: the head (total = the whole run form's length) or the rest
    (total None); data: the piece's bytes of the bundle's run form (the first form of 5.11)."""
    next_hop: int
    transfer: int
    total: Optional[int]
    data: bytes


def first_header(form: bytes) -> tuple:
    """5.12: ((created, sequence, head, lifetime), length) of the header of a first bundle's run form."""
    r = Reader(form)
    b0, b1 = r.uint(1, "bundle byte 0"), r.uint(1, "bundle flags")
    more = r.uint(1, "bundle more-flags") if b1 & 0x02 else None
    created = r.uint(3, "created")
    sequence = r.varint("sequence")
    lifetime = r.varint("lifetime")
    return (created, sequence, bytes([b0, b1]) + (bytes([more]) if more is not None else b""), lifetime), r.pos


def later_header(data: bytes, like: bool, skip: int, previous) -> tuple:
    """5.12: (first bundle's header bytes, length taken from `data`) of a later bundle's header after `previous`."""
    if like:
        if previous[1] + 1 + skip > 0xFFFFFFFF:
            raise WireError("invalidValue", "sequence past 2^32 - 1")
        return previous[2] + u(previous[0], 3) + encode_varint(previous[1] + 1 + skip) + encode_varint(previous[3]), 0
    r = Reader(data)
    b0, b1 = r.uint(1, "bundle byte 0"), r.uint(1, "bundle flags")
    more = r.uint(1, "bundle more-flags") if b1 & 0x02 else None
    created = previous[0] + _unzigzag(r.varint("created delta"))
    if not 0 <= created < 1 << 24:
        raise WireError("invalidValue", "created outside 0 ..< 2^24")
    sequence = (previous[1] + 1 + _unzigzag(r.varint("sequence delta"))) % (1 << 32)
    lifetime = r.varint("lifetime")
    head = bytes([b0, b1]) + (bytes([more]) if more is not None else b"")
    return head + u(created, 3) + encode_varint(sequence) + encode_varint(lifetime), r.pos


def cut_bundle(rec, keep: int) -> tuple:
    """5.12: the head and rest of a run-eligible bundle record cut after `keep` bytes of its first form (the head holds
    the form's header and at least a byte more)."""
    form = run_form(rec.bundle, rec.compact_from, rec.next_hop, None)[0]
    if not first_header(form)[1] < keep < len(form):
        raise ValueError("a cut leaves a piece empty or the header in two")
    return (RunPiece(rec.next_hop, rec.transfer, len(form), form[:keep]),
            RunPiece(rec.next_hop, rec.transfer, None, form[keep:]))


def join_pieces(head: RunPiece, rest: RunPiece, origin: int) -> bytes:
    """5.12: the bundle a head and its rest make."""
    if head.total is None or len(head.data) + len(rest.data) != head.total:
        raise WireError("invalidValue", "the rest does not complete the head")
    bundle = expand_run_form(head.data + rest.data, None, origin, head.next_hop)[0]
    if len(bundle) > MAX_BUNDLE:
        raise WireError("tooLarge", "cut bundle")
    return bundle


def _zigzag(v: int) -> int:
    v = (v + (1 << 31)) % (1 << 32) - (1 << 31)  # as a signed 32-bit difference
    return ((v << 1) ^ (v >> 31)) & 0xFFFFFFFF


def _unzigzag(z: int) -> int:
    return (z >> 1) ^ -(z & 1)


def _skip_respond_reference(r: "Reader", more: int):
    if more & 0x80:
        r.varint("respond-by")
    if more & 0x40:
        r.take(7, "reference")
        r.varint("reference sequence")


def run_form(bundle: bytes, origin: int, destination: int, previous, skip: int = 0) -> Optional[tuple]:
    """5.11: (run form bytes, state, like) of `bundle` after `previous` (the state (created, sequence, head,
    lifetime field) of the bundle before it in the run, or None for the first), or None when it has no compact form.
    `like`: written after 00 as only its rest."""
    compact = compact_bundle(bundle, origin, destination)
    if compact is None:
        return None
    try:
        r = Reader(compact)
        b0, b1 = r.uint(1, "b0"), r.uint(1, "b1")
        more = r.uint(1, "more") if b1 & 0x02 else None
        created = r.uint(3, "created")
        sequence = r.varint("sequence")
        lifetime = r.varint("lifetime")
        rest_start = r.pos
        _skip_respond_reference(r, more or 0)
        cut = None
        if (b1 >> 4) & 0x03 == 2 and r.uint(1, "dictionary") == 1:
            cut = r.pos - 1
    except WireError:
        return None
    if cut is not None:
        b1 |= 0x01
    head = bytes([b0, b1]) + (bytes([more]) if more is not None else b"")
    rest = compact[rest_start:cut] + compact[cut + 1:] if cut is not None else compact[rest_start:]
    like = (previous is not None and len(rest) > 0 and previous[2] == head and previous[0] == created
            and sequence == previous[1] + 1 + skip and previous[3] == lifetime)
    if like:
        out = b""
    elif previous is None:
        out = head + u(created, 3) + encode_varint(sequence)
    else:
        out = head + encode_varint(_zigzag(created - previous[0])) + encode_varint(_zigzag(sequence - previous[1] - 1))
    if not like:
        out += encode_varint(lifetime)
    out += rest
    try:
        if expand_run_form(out, previous, origin, destination, like, skip)[0] != bundle:
            return None
    except WireError:
        return None
    return out, (created, sequence, head, lifetime), like


def expand_run_form(form: bytes, previous, origin: int, destination: int, like: bool = False, skip: int = 0) -> tuple:
    """5.11: (whole bundle, state) from its run form."""
    if like:
        if previous is None:
            raise WireError("invalidValue", "a bundle like the one before it, first in its run")
        if previous[1] + 1 + skip > 0xFFFFFFFF:
            raise WireError("invalidValue", "sequence past 2^32 - 1")
        return expand_run_form(previous[2] + u(previous[0], 3) + encode_varint(previous[1] + 1 + skip)
                               + encode_varint(previous[3]) + form, None, origin, destination)
    r = Reader(form)
    b0, b1 = r.uint(1, "bundle byte 0"), r.uint(1, "bundle flags")
    more = r.uint(1, "bundle more-flags") if b1 & 0x02 else None
    head = bytes([b0, b1]) + (bytes([more]) if more is not None else b"")
    dict_one = bool(b1 & 0x01)
    b1 &= 0xFE
    if dict_one and (b1 >> 4) & 0x03 != 2:
        raise WireError("invalidValue", "dictionary 1 flagged without dictionary compression")
    if previous is None:
        created = r.uint(3, "created")
        sequence = r.varint("sequence")
    else:
        created = previous[0] + _unzigzag(r.varint("created delta"))
        if not 0 <= created < 1 << 24:
            raise WireError("invalidValue", "created outside 0 ..< 2^24")
        sequence = (previous[1] + 1 + _unzigzag(r.varint("sequence delta"))) % (1 << 32)
    lifetime = r.varint("lifetime")
    start = r.pos
    _skip_respond_reference(r, more or 0)
    compact = (bytes([b0, b1]) + (bytes([more]) if more is not None else b"") + u(created, 3) + encode_varint(sequence)
               + encode_varint(lifetime) + form[start:r.pos] + (b"\x01" if dict_one else b"") + form[r.pos:])
    return expand_bundle(compact, origin, destination), (created, sequence, head, lifetime)


def run_eligible(rec) -> bool:
    return (isinstance(rec, BundleRecord) and rec.in_run and rec.compact_from is not None and rec.next_hop is not None
            and rec.transfer is not None and run_form(rec.bundle, rec.compact_from, rec.next_hop, None) is not None)


def encode_run_body(run: list, rest: Optional[RunPiece] = None, head: Optional[RunPiece] = None) -> bytes:
    """5.11, 5.12: a rest first (flag R), whole bundles, a head last (flag C). After a rest the first whole bundle is
    written as a first one; a cut bundle is always in the first form."""
    first = rest or (run[0] if run else head)
    body = u(first.next_hop, 4) + encode_varint(first.transfer)
    previous, last = None, None
    if rest is not None:
        body += encode_varint(len(rest.data)) + rest.data
        last = rest.transfer
    state = None
    for rec in run:
        skip = 0 if last is None else rec.transfer - last - 1
        form, state, like = run_form(rec.bundle, rec.compact_from, rec.next_hop, previous, skip)
        if last is not None:
            body += encode_varint(skip << 1 | (1 if like else 0))
        body += encode_varint(len(form)) + form
        previous, last = state, rec.transfer
    if head is not None:
        if previous is not None:
            # After a bundle of the run: its header as a later bundle's (5.11), the rest of the head as it is.
            skip = head.transfer - last - 1
            (created, sequence, h, lifetime), n = first_header(head.data)
            like = (previous[2] == h and previous[0] == created and sequence == previous[1] + 1 + skip
                    and previous[3] == lifetime)
            later = b"" if like else (h + encode_varint(_zigzag(created - previous[0]))
                                      + encode_varint(_zigzag(sequence - previous[1] - 1)) + encode_varint(lifetime))
            body += encode_varint(skip << 1 | (1 if like else 0))
            body += encode_varint(head.total - n + len(later)) + later + head.data[n:]
        else:
            if last is not None:
                body += encode_varint((head.transfer - last - 1) << 1)
            body += encode_varint(head.total) + head.data
    return body


def decode_run(body: bytes, sender: Optional[int], flags: int = 0) -> list:
    if sender is None:
        raise WireError("invalidValue", "bundle run outside an ordinary packet")
    r = Reader(body)
    next_hop = r.uint(4, "run next hop")
    transfer = r.varint("run transfer")
    out, previous, first, cut = [], None, True, False
    if flags & RUN_REST:
        length = r.varint("run rest length", MAX_BUNDLE)
        if length < 1:
            raise WireError("truncated", "empty rest in a run")
        out.append(RunPiece(next_hop, transfer, None, r.take(length, "run rest")))
        first = False
    while r.remaining():
        like, skip = False, 0
        if not first:
            step = r.varint("run step")
            skip, like = step >> 1, bool(step & 1)
            transfer += 1 + skip
            if transfer > 0xFFFFFFFF:
                raise WireError("invalidValue", "run transfer numbers past 2^32 - 1")
        first = False
        length = r.varint("run length", MAX_BUNDLE)
        if length < 1:
            raise WireError("truncated", "empty bundle in a run")
        if flags & RUN_CUT and length > r.remaining():
            data = r.rest()
            if previous is not None:
                first_bytes, n = later_header(data, like, skip, previous)
                if n >= len(data):
                    raise WireError("truncated", "head of a cut bundle")
                out.append(RunPiece(next_hop, transfer, length - n + len(first_bytes), first_bytes + data[n:]))
            else:
                if like:
                    raise WireError("invalidValue", "a cut bundle like the one before it, first in its run")
                if not data:
                    raise WireError("truncated", "empty head of a cut bundle")
                out.append(RunPiece(next_hop, transfer, length, data))
            cut = True
            break
        form = r.take(length, "run bundle")
        bundle, previous = expand_run_form(form, previous, sender, next_hop, like, skip)
        if len(bundle) > MAX_BUNDLE:
            raise WireError("tooLarge", "bundle in a run")
        out.append(BundleRecord(bundle, next_hop, transfer, sender, True))
    if flags & RUN_CUT and not cut:
        raise WireError("truncated", "a cut run without its head")
    if not out:
        raise WireError("truncated", "bundle run without bundles")
    return out


def _compact_layout(r: "Reader"):
    b0 = r.uint(1, "bundle byte 0")
    b1 = r.uint(1, "bundle flags")
    n = 2
    if b1 & 0x02:
        r.uint(1, "bundle more-flags")
        n = 3
    return kind_defaults(b0 & 0x0F)[1], n, (b1 >> 6) == DEST_NODE


def compact_bundle(bundle: bytes, origin: int, destination: int) -> Optional[bytes]:
    """5.3: the compact form of `bundle` from `origin` to next hop `destination`, or None when it does not allow it."""
    try:
        r = Reader(bundle)
        default, n, to_node = _compact_layout(r)
        if not to_node or r.uint(4, "origin") != origin:
            return None
        created = r.take(3, "created")
        sequence = r.varint("sequence")
        lifetime = r.varint("lifetime")
        if r.uint(4, "destination") != destination:
            return None
        out = bundle[:n] + created + encode_varint(sequence) + encode_varint(0 if lifetime == default else lifetime) + r.rest()
    except WireError:
        return None
    return out if expand_bundle(out, origin, destination) == bundle else None


def expand_bundle(compact: bytes, origin: int, destination: int) -> bytes:
    """5.3: the whole bundle from its compact form (origin = the packet's sender, destination = the next hop)."""
    r = Reader(compact)
    default, n, to_node = _compact_layout(r)
    if not to_node:
        raise WireError("invalidValue", "compact form of a bundle not addressed to one node")
    created = r.take(3, "created")
    sequence = r.varint("sequence")
    lifetime = r.varint("lifetime")
    return (compact[:n] + u(origin, 4) + created + encode_varint(sequence)
            + encode_varint(default if lifetime == 0 else lifetime) + u(destination, 4) + r.rest())


@dataclass
class FragmentRecord:
    transfer: int
    index: int
    count: int
    data: bytes
    next_hop: Optional[int] = None


@dataclass
class AckEntry:
    transfer: int
    received: int
    bitmap: bytes = b""


@dataclass
class AckRecord:
    target: int
    entries: list[AckEntry]
    # 5.5 flag W: written as ranges of whole transfers when every entry is received = 1 with no bitmap
    ranges: bool = False


MAX_RANGE_ENTRIES = 4096


def ack_ranges_form(rec: "AckRecord") -> bool:
    return (rec.ranges and 0 < len(rec.entries) <= MAX_RANGE_ENTRIES
            and all(e.received == 1 and not e.bitmap for e in rec.entries))


@dataclass
class AnnounceRecord:
    capabilities: int
    signing_key: Optional[bytes] = None
    agreement_key: Optional[bytes] = None
    name: Optional[str] = None


@dataclass
class SummaryRecord:
    digests: list[int]
    final: bool = False


@dataclass
class DictionariesRecord:
    """5.10: federation dictionaries the sender holds ((id, fingerprint) pairs), or asks for (request; fingerprint 0:
    any with that id)."""
    entries: list[tuple[int, int]]
    request: bool = False
    reads_bare: bool = False     # flag B (0x02): the sender reads the bare block form (7.2); only without Q


@dataclass
class ReceiptPartsRecord:
    """6.16: parts for the bundles of `origin`; groups are (created, sequence, [(holder, tag)]). `part_hops`
    (record flag 0x01, "Hop counts"): per group, each part's hop count, or None for a record without them."""
    origin: int
    hops: int
    groups: list
    part_hops: Optional[list] = None


@dataclass
class UnknownRecord:
    code: int
    flags: int
    body: bytes


def record_type_flags_body(rec) -> tuple[int, int, bytes]:
    if isinstance(rec, RunPiece):
        head = rec.total is not None
        return T_BUNDLE_RUN, RUN_CUT if head else RUN_REST, encode_run_body([], None if head else rec, rec if head else None)
    if isinstance(rec, BundleRecord):
        if not 1 <= len(rec.bundle) <= MAX_BUNDLE:
            raise WireError("tooLarge" if rec.bundle else "truncated", "bundle record")
        flags, body = 0, b""
        if rec.next_hop is not None:
            flags |= 0x01
            body += u(rec.next_hop, 4)
        if rec.transfer is not None:
            flags |= 0x02
            body += encode_varint(rec.transfer)
        compact = None
        if rec.compact_from is not None and rec.next_hop is not None:
            compact = compact_bundle(rec.bundle, rec.compact_from, rec.next_hop)
        if compact is not None:
            return T_BUNDLE, flags | 0x04, body + compact
        return T_BUNDLE, flags, body + rec.bundle
    if isinstance(rec, FragmentRecord):
        flags, body = 0, b""
        if rec.next_hop is not None:
            flags, body = 0x01, u(rec.next_hop, 4)
        body += encode_varint(rec.transfer) + encode_varint(rec.index) + encode_varint(rec.count)
        return T_FRAGMENT, flags, body + rec.data
    if isinstance(rec, NeighbourListRecord):
        return T_NEIGHBOURS, 0x01 if rec.relays is not None else 0, encode_neighbours(rec)
    if isinstance(rec, CopyBudgetsRecord):
        return T_COPY_BUDGETS, 0, encode_copy_budgets(rec)
    if isinstance(rec, ReceiptPartsRecord):
        return T_RECEIPT_PARTS, 0x01 if rec.part_hops is not None else 0, encode_receipt_parts(rec)
    if isinstance(rec, BundleRecord) and run_eligible(rec):
        return T_BUNDLE_RUN, 0, encode_run_body([rec])
    if isinstance(rec, AckRecord) and ack_ranges_form(rec):
        body = u(rec.target, 4)
        ranges = []
        for t in sorted({e.transfer for e in rec.entries}):
            if ranges and ranges[-1][0] + ranges[-1][1] + 1 == t:
                ranges[-1][1] += 1
            else:
                ranges.append([t, 0])
        for first, more in ranges:
            body += encode_varint(first) + encode_varint(more)
        return T_ACK, 0x01, body
    if isinstance(rec, AckRecord):
        body = u(rec.target, 4)
        for e in rec.entries:
            body += encode_varint(e.transfer) + encode_varint(e.received) + encode_varint(len(e.bitmap)) + e.bitmap
        return T_ACK, 0, body
    if isinstance(rec, AnnounceRecord):
        flags, body = 0, bytes([rec.capabilities])
        if rec.signing_key is not None:
            flags |= 0x01
            body += rec.signing_key
        if rec.agreement_key is not None:
            flags |= 0x02
            body += rec.agreement_key
        if rec.name is not None:
            flags |= 0x04
            body += rec.name.encode("utf-8")
        return T_ANNOUNCE, flags, body
    if isinstance(rec, SummaryRecord):
        return T_SUMMARY, 0x01 if rec.final else 0, b"".join(u(d, 4) for d in rec.digests)
    if isinstance(rec, DictionariesRecord):
        return T_DICTIONARIES, 0x01 if rec.request else (0x02 if rec.reads_bare else 0), b"".join(u(i, 1) + u(fp, 2) for i, fp in rec.entries)
    if isinstance(rec, UnknownRecord):
        return rec.code, rec.flags, rec.body
    raise TypeError(rec)


def encode_record(rec, last: bool) -> bytes:
    """5.1: L = 1 (with a length) unless this is the last record of the payload."""
    rtype, flags, body = record_type_flags_body(rec)
    if last:
        return bytes([(rtype << 4) | flags]) + body
    return bytes([(rtype << 4) | 0x08 | flags]) + encode_varint(len(body)) + body


def _continues(last, rec) -> bool:
    return (last.next_hop == rec.next_hop and last.compact_from == rec.compact_from
            and last.transfer < rec.transfer and rec.transfer - last.transfer - 1 <= 0x7FFFFFFF)


def encode_units(records: list) -> list:
    """5.11, 5.12: (type, flags, body) as written: run-eligible bundle records that continue one another share a run,
    which may begin with the rest of a cut bundle and end with the head of one."""
    units, run, rest = [], [], None
    last = [None, None]  # next hop, transfer of the run's last element

    def flush(head=None):
        nonlocal run, rest
        if run or rest is not None or head is not None:
            flags = (RUN_REST if rest is not None else 0) | (RUN_CUT if head is not None else 0)
            units.append((T_BUNDLE_RUN, flags, encode_run_body(run, rest, head)))
        run, rest = [], None

    def continues(hop, transfer, from_):
        if not run and rest is None:
            return False
        t = last[1]
        if not (transfer > t and transfer - t - 1 <= 0x7FFFFFFF and hop == last[0]):
            return False
        return run[-1].compact_from == from_ if run else True

    for rec in records:
        if run_eligible(rec):
            if not continues(rec.next_hop, rec.transfer, rec.compact_from):
                flush()
            run.append(rec)
            last[:] = [rec.next_hop, rec.transfer]
            continue
        if isinstance(rec, RunPiece):
            if rec.total is not None:
                if not continues(rec.next_hop, rec.transfer, run[-1].compact_from if run else None):
                    flush()
                flush(rec)
            else:
                flush()
                rest = rec
                last[:] = [rec.next_hop, rec.transfer]
            continue
        flush()
        units.append(record_type_flags_body(rec))
    flush()
    return units


def encode_payload(records: list) -> bytes:
    units = encode_units(records)
    out = b""
    for i, (rtype, flags, body) in enumerate(units):
        if i == len(units) - 1:
            out += bytes([(rtype << 4) | flags]) + body
        else:
            out += bytes([(rtype << 4) | 0x08 | flags]) + encode_varint(len(body)) + body
    return out


def decode_record(rtype: int, flags: int, body: bytes, sender: Optional[int] = None):
    r = Reader(body)
    if rtype == T_BUNDLE:
        next_hop = r.uint(4, "next hop") if flags & 0x01 else None
        transfer = r.varint("transfer") if flags & 0x02 else None
        bundle = r.rest()
        compact_from = None
        if flags & 0x04:
            if next_hop is None:
                raise WireError("invalidValue", "compact bundle record without a next hop")
            if sender is None:
                raise WireError("invalidValue", "compact bundle record outside an ordinary packet")
            bundle = expand_bundle(bundle, sender, next_hop)
            compact_from = sender
        if not bundle:
            raise WireError("truncated", "empty bundle record")
        if len(bundle) > MAX_BUNDLE:
            raise WireError("tooLarge", f"bundle record {len(bundle)} > {MAX_BUNDLE}")
        return BundleRecord(bundle, next_hop, transfer, compact_from)
    if rtype == T_FRAGMENT:
        next_hop = r.uint(4, "next hop") if flags & 0x01 else None
        transfer = r.varint("transfer")
        index = r.varint("fragment index", MAX_FRAGMENT_INDEX)
        count = r.varint("fragment count", MAX_FRAGMENTS)
        if count < 2:
            raise WireError("invalidValue", "fragment count < 2")
        if index >= count:
            raise WireError("invalidValue", "fragment index >= count")
        data = r.rest()
        if not data:
            raise WireError("truncated", "empty fragment data")
        return FragmentRecord(transfer, index, count, data, next_hop)
    if rtype == T_ACK and flags & 0x01:
        target = r.uint(4, "ack target")
        entries = []
        while r.remaining():
            first = r.varint("ack transfer")
            more = r.varint("ack more")
            if first + more > 0xFFFFFFFF:
                raise WireError("invalidValue", "ack range past 2^32 - 1")
            if len(entries) + more + 1 > MAX_RANGE_ENTRIES:
                raise WireError("tooLarge", "ack ranges")
            entries += [AckEntry(first + k, 1) for k in range(more + 1)]
        if not entries:
            raise WireError("truncated", "ack without ranges")
        return AckRecord(target, entries, True)
    if rtype == T_ACK:
        target = r.uint(4, "ack target")
        entries = []
        while r.remaining():
            transfer = r.varint("ack transfer")
            received = r.varint("ack received", MAX_ACK_RECEIVED)
            length = r.varint("ack bitmap length", MAX_ACK_BITMAP)
            entries.append(AckEntry(transfer, received, r.take(length, "ack bitmap")))
        if not entries:
            raise WireError("truncated", "ack without entries")
        return AckRecord(target, entries)
    if rtype == T_ANNOUNCE:
        rec = AnnounceRecord(r.uint(1, "capabilities"))
        if flags & 0x01:
            rec.signing_key = r.take(32, "signing key")
        if flags & 0x02:
            rec.agreement_key = r.take(32, "agreement key")
        if flags & 0x04:
            name = r.rest()
            if len(name) > MAX_NAME:
                raise WireError("tooLarge", f"announce name {len(name)} > {MAX_NAME}")
            try:
                rec.name = name.decode("utf-8")
            except UnicodeDecodeError:
                raise WireError("invalidValue", "announce name not UTF-8")
        elif r.remaining():
            raise WireError("trailingBytes", f"announce: {r.remaining()}")
        return rec
    if rtype == T_SUMMARY:
        if len(body) % 4:
            raise WireError("invalidValue", "summary length not a multiple of 4")
        return SummaryRecord([int.from_bytes(body[i:i + 4], "big") for i in range(0, len(body), 4)],
                             bool(flags & 0x01))
    if rtype == T_DICTIONARIES:
        if len(body) % 3:
            raise WireError("invalidValue", "dictionaries length not a multiple of 3")
        entries = [(body[i], int.from_bytes(body[i + 1:i + 3], "big")) for i in range(0, len(body), 3)]
        request = bool(flags & 0x01)
        if request and not entries:
            raise WireError("truncated", "dictionary request without entries")
        if any(i < 2 for i, _ in entries):
            raise WireError("invalidValue", "federation dictionaries are numbered 2-255")
        return DictionariesRecord(entries, request, not request and bool(flags & 0x02))
    if rtype == T_RECEIPT_PARTS:
        return decode_receipt_parts(body, bool(flags & 0x01))
    if rtype == T_NEIGHBOURS:
        return decode_neighbours(body, bool(flags & 0x01))
    if rtype == T_COPY_BUDGETS:
        return decode_copy_budgets(body)
    return UnknownRecord(rtype, flags, body)


# ---------------------------------------------------------------------------------------------
# Copy budgets (5.14): binary spray-and-wait
# ---------------------------------------------------------------------------------------------

MAX_COPIES = 65_535


@dataclass
class CopyBudgetsRecord:
    entries: list  # (transfer number, copies) pairs, in the order written


def encode_copy_budgets(rec: CopyBudgetsRecord) -> bytes:
    return b"".join(encode_varint(t) + encode_varint(n) for t, n in rec.entries)


def decode_copy_budgets(body: bytes) -> CopyBudgetsRecord:
    r = Reader(body)
    entries = []
    while r.remaining():
        transfer = r.varint("copy budget transfer", 0xFFFFFFFF)
        copies = r.varint("copy budget", MAX_COPIES)
        if copies < 1:
            raise WireError("invalidValue", "a copy budget is at least 1")
        entries.append((transfer, copies))
    if not entries:
        raise WireError("truncated", "copy budgets without an entry")
    return CopyBudgetsRecord(entries)


# ---------------------------------------------------------------------------------------------
# Neighbour lists (5.13, 8.7)
# ---------------------------------------------------------------------------------------------

MAX_NEIGHBOUR_IDS = 63


@dataclass
class NeighbourListRecord:
    ids: list  # short ids (int), ascending, no repeats: every neighbour listed, the relays too
    relays: Optional[list] = None  # flag R (0x01): the relays named (a subset of ids), ascending


def encode_neighbours(rec: NeighbourListRecord) -> bytes:
    if rec.relays is None:
        return b"".join(u(i, 4) for i in sorted(set(rec.ids)))
    relays = sorted(set(rec.relays))
    others = sorted(set(rec.ids) - set(relays))
    return bytes([len(relays)]) + b"".join(u(i, 4) for i in relays + others)


def decode_neighbours(body: bytes, with_relays: bool = False) -> NeighbourListRecord:
    r = Reader(body)
    count = r.uint(1, "neighbour relays") if with_relays else 0
    rest = r.rest()
    if len(rest) % 4:
        raise WireError("invalidValue", "neighbours length not a multiple of 4")
    if len(rest) // 4 > MAX_NEIGHBOUR_IDS:
        raise WireError("tooLarge", f"neighbours: {len(rest) // 4} ids > {MAX_NEIGHBOUR_IDS}")
    ids = [int.from_bytes(rest[i:i + 4], "big") for i in range(0, len(rest), 4)]
    if count > len(ids):
        raise WireError("invalidValue", "more relays than ids")
    relays, others = ids[:count], ids[count:]
    for group in (relays, others):
        if any(a >= b for a, b in zip(group, group[1:])):
            raise WireError("invalidValue", "neighbour ids not in ascending order")
    if set(relays) & set(others):
        raise WireError("invalidValue", "a relay listed twice")
    return NeighbourListRecord(sorted(ids), relays if with_relays else None)


# ---------------------------------------------------------------------------------------------
# Aggregated receipts: receipt-parts records (6.16)
# ---------------------------------------------------------------------------------------------

RECEIPT_TAG_SIZE = 8
MAX_RECEIPT_HOLDERS = 255


def encode_receipt_parts(rec: ReceiptPartsRecord) -> bytes:
    body = u(rec.origin, 4) + bytes([rec.hops])
    for g, (created, sequence, parts) in enumerate(rec.groups):
        body += u(created, 3) + encode_varint(sequence) + encode_varint(len(parts))
        for i, (holder, tag) in enumerate(parts):
            body += u(holder, 4)
            if rec.part_hops is not None:
                body += bytes([rec.part_hops[g][i]])
            body += tag
    return body


def decode_receipt_parts(body: bytes, with_hops: bool = False) -> ReceiptPartsRecord:
    """`with_hops`: record flag 0x01 (6.16 "Hop counts"): each part is holder u32, hops u8, tag 8."""
    r = Reader(body)
    origin = r.uint(4, "receipt parts origin")
    hops = r.uint(1, "receipt parts hops")
    groups, part_hops = [], []
    while r.remaining():
        created = r.uint(3, "receipt parts created")
        sequence = r.varint("receipt parts sequence")
        count = r.varint("receipt parts count", MAX_RECEIPT_HOLDERS)
        if count < 1:
            raise WireError("invalidValue", "receipt parts count 0")
        parts, hs = [], []
        for _ in range(count):
            holder = r.uint(4, "receipt parts holder")
            if with_hops:
                hs.append(r.uint(1, "receipt parts part hops"))
            parts.append((holder, r.take(RECEIPT_TAG_SIZE, "receipt parts tag")))
        groups.append((created, sequence, parts))
        part_hops.append(hs)
    if not groups:
        raise WireError("truncated", "receipt parts without groups")
    return ReceiptPartsRecord(origin, hops, groups, part_hops if with_hops else None)


def receipt_key(own_agreement_private: bytes, peer_agreement_public: bytes,
                holder_node_id: bytes, origin_node_id: bytes) -> bytes:
    """K = HKDF-SHA256(X25519(holder, origin), "courier/v1", "receipt" || holder id || origin id)."""
    shared = X25519PrivateKey.from_private_bytes(own_agreement_private).exchange(
        X25519PublicKey.from_public_bytes(peer_agreement_public))
    return hkdf_sha256(shared, b"receipt" + holder_node_id + origin_node_id)


def receipt_tag(key: bytes, origin: int, created: int, sequence: int, holder: int) -> bytes:
    statement = b"courier receipt" + u(origin, 4) + u(created, 3) + encode_varint(sequence) + u(holder, 4)
    return hmac.new(key, statement, hashlib.sha256).digest()[:RECEIPT_TAG_SIZE]


def decode_payload(payload: bytes, sender: Optional[int] = None) -> list:
    """5.1: all or nothing; padding is dropped; reserved flags of known types -> UnknownRecord. `sender`: the short
    id of an ordinary-form packet's sender, the origin of its compact bundle records (5.3)."""
    records, pos = [], 0
    while pos < len(payload):
        h = payload[pos]
        pos += 1
        rtype, has_length, flags = h >> 4, bool(h & 0x08), h & 0x07
        if has_length:
            length, pos = decode_varint(payload, pos, "record length")
            if length > MAX_RECORD_LENGTH:
                raise WireError("invalidValue", f"record length {length} > {MAX_RECORD_LENGTH}")
            if pos + length > len(payload):
                raise WireError("truncated", "record body")
            body, pos = payload[pos:pos + length], pos + length
        else:
            body, pos = payload[pos:], len(payload)
        if rtype == T_PADDING:
            if not has_length:
                break
            continue
        if rtype in RESERVED_FLAGS and flags & RESERVED_FLAGS[rtype]:
            records.append(UnknownRecord(rtype, flags, body))
            continue
        if rtype == T_BUNDLE_RUN:
            records += decode_run(body, sender, flags)
            continue
        records.append(decode_record(rtype, flags, body, sender))
    return records


def pack_records(records: list, mtu: int, announce_form: bool = False) -> list[list]:
    """5.9: greedy, in order; a record alone in a packet is always accepted."""
    overhead = OVERHEAD_ANNOUNCE if announce_form else OVERHEAD_ORDINARY
    packets: list[list] = []
    for rec in records:
        if packets and overhead + len(encode_payload(packets[-1] + [rec])) <= mtu:
            packets[-1].append(rec)
        else:
            packets.append([rec])
    return packets


# ---------------------------------------------------------------------------------------------
# Packets (section 4)
# ---------------------------------------------------------------------------------------------


@dataclass
class PacketHeader:
    announce: bool
    open: bool
    sender: int
    counter: int
    salt: Optional[int]
    clear: bytes          # the clear header bytes (the AAD)

    @property
    def nonce(self) -> bytes:
        """3.2: sender || counter || salt (salt 0 in the ordinary form)."""
        return u(self.sender, 4) + u(self.counter, 4) + u(self.salt or 0, 4)


def decode_packet_header(packet: bytes) -> PacketHeader:
    """4.1 / 4.7 steps 2-3, in the reference order: version, reserved bits, then length (fewer
    than 9 bytes, or 13 in the announce form, is truncated). The tag length is checked by
    open_packet."""
    if not packet:
        raise WireError("truncated", "packet header")
    h = packet[0]
    if h >> 4 != 1:
        raise WireError("unsupportedVersion", str(h >> 4))
    if h & 0x03:
        raise WireError("unsupportedFeature", "packet header reserved bits")
    announce, is_open = bool(h & 0x08), bool(h & 0x04)
    size = 13 if announce else 9
    if len(packet) < size:
        raise WireError("truncated", "packet header")
    return PacketHeader(announce, is_open, int.from_bytes(packet[1:5], "big"), int.from_bytes(packet[5:9], "big"),
                        int.from_bytes(packet[9:13], "big") if announce else None, packet[:size])


def _aead_seal(key: bytes, header: PacketHeader, payload: bytes) -> bytes:
    aead = ChaCha20Poly1305(key)
    if header.open:   # 4.4: tag over empty plaintext, AAD = clear header || payload
        return payload + aead.encrypt(header.nonce, b"", header.clear + payload)
    return aead.encrypt(header.nonce, payload, header.clear)     # 4.3


def _aead_open(key: bytes, header: PacketHeader, body: bytes) -> Optional[bytes]:
    aead = ChaCha20Poly1305(key)
    try:
        if header.open:
            payload, tag = body[:-TAG], body[-TAG:]
            aead.decrypt(header.nonce, tag, header.clear + payload)
            return payload
        return aead.decrypt(header.nonce, body, header.clear)
    except InvalidTag:
        return None


def seal_packet(network_key: bytes, sender_node_id: bytes, counter: int, payload: bytes, *,
                open_mode: bool = False, announce_salt: Optional[int] = None) -> bytes:
    """announce_salt given -> announce form (A = 1) with the announce key; else the sender's packet key."""
    announce = announce_salt is not None
    sender = short_id_of(sender_node_id)
    clear = bytes([0x10 | (0x08 if announce else 0) | (0x04 if open_mode else 0)]) + u(sender, 4) + u(counter, 4)
    if announce:
        clear += u(announce_salt, 4)
    header = PacketHeader(announce, open_mode, sender, counter, announce_salt, clear)
    key = announce_key(network_key) if announce else packet_key(network_key, sender_node_id)
    packet = clear + _aead_seal(key, header, payload)
    if len(packet) > MAX_PACKET:
        raise WireError("tooLarge", f"packet {len(packet)} > {MAX_PACKET}")
    return packet


@dataclass
class OpenedPacket:
    header: PacketHeader
    sender_node_id: Optional[bytes]     # None for the announce form (4.5)
    payload: bytes
    records: list


def open_packet(packet: bytes, network_key: bytes, known: dict[int, list[bytes]], *,
                open_mode: bool = False) -> OpenedPacket:
    """4.7 steps 1-6. known: short id -> all full node ids with that short id (2.3).
    The replay check (step 7) is ReplayWindow, kept per sender node id (see Receiver)."""
    if len(packet) > MAX_PACKET:
        raise WireError("tooLarge", f"packet {len(packet)} > {MAX_PACKET}")
    header = decode_packet_header(packet)
    if len(packet) < len(header.clear) + TAG:
        raise WireError("truncated", "packet")
    if header.open and not open_mode:
        raise WireError("unsupportedFeature", "open packet in a sealed federation")
    body = packet[len(header.clear):]
    if header.announce:
        payload = _aead_open(announce_key(network_key), header, body)
        if payload is None:
            raise WireError("authenticationFailed")
        return OpenedPacket(header, None, payload, decode_payload(payload))
    candidates = known.get(header.sender, [])
    if not candidates:
        raise WireError("unknownSender", short_id_text(header.sender))
    for node_id in candidates:
        payload = _aead_open(packet_key(network_key, node_id), header, body)
        if payload is not None:
            return OpenedPacket(header, node_id, payload, decode_payload(payload, header.sender))
    raise WireError("authenticationFailed")


class _Window:
    """One window of 4.8: the highest counter accepted, a 64-bit bitmap ending there, and the
    counter that opened it."""

    def __init__(self, c: int):
        self.highest, self.seen, self.low = c, 1, c

    def accept(self, c: int) -> bool:
        if c > self.highest:
            shift = c - self.highest
            self.seen = 0 if shift >= 64 else (self.seen << shift) & 0xFFFFFFFFFFFFFFFF
            self.seen |= 1
            self.highest = c
            return True
        back = self.highest - c
        if back >= 64 or self.seen >> back & 1:
            return False
        self.seen |= 1 << back
        return True


class ReplayWindow:
    """4.8, one per sender full node id: a main window, and a tentative one for a counter more
    than B ahead of it, which replaces the main one after CONFIRM packets with none in the main."""

    B = 65536
    CONFIRM = 4

    def __init__(self):
        self.main: Optional[_Window] = None
        self.tentative: Optional[_Window] = None
        self.hits = 0

    @property
    def highest(self) -> Optional[int]:
        return self.main.highest if self.main else None

    def accept(self, c: int) -> bool:
        if self.main is None:
            self.main = _Window(c)
            return True
        t = self.tentative
        if t is not None and t.low <= c <= t.highest + self.B:
            ok = t.accept(c)
            if ok:
                self.hits += 1
                if self.hits >= self.CONFIRM:
                    self.main, self.tentative, self.hits = t, self.main, 0
            return ok
        if c <= self.main.highest + self.B:
            ok = self.main.accept(c)
            if ok:
                self.hits = 0
            return ok
        self.tentative, self.hits = _Window(c), 1
        return True


class Neighbours:
    """2.3 short-id table (short id -> every node known with it) and 9.3 partial announces:
    a lone key is held by header short id until the other key arrives; then the node id is
    computed and must have the header's short id, or the keys are discarded."""

    def __init__(self):
        self.nodes: dict[int, list[PublicNode]] = {}
        self.partial: dict[int, tuple[Optional[bytes], Optional[bytes]]] = {}

    def known(self) -> dict[int, list[bytes]]:
        return {sid: [n.node_id for n in nodes] for sid, nodes in self.nodes.items()}

    def candidates(self, short_id: int) -> list[PublicNode]:
        return list(self.nodes.get(short_id, []))

    def identify(self, header_short_id: int, announces: list) -> Optional[PublicNode]:
        """The node the announce records of one packet (with any held lone key) identify,
        without changing any state; None while only one key has been heard."""
        held = self.partial.get(header_short_id, (None, None))
        sk, ak = held
        for rec in announces:
            sk = rec.signing_key or sk
            ak = rec.agreement_key or ak
        if sk is not None and ak is not None:
            node = PublicNode(sk, ak)
            return node if node.short_id == header_short_id else None
        for node in self.nodes.get(header_short_id, []):   # a lone key of a node heard in full before
            if (sk is not None and sk == node.signing_public) or (ak is not None and ak == node.agreement_public):
                return node
        return None

    def learn(self, header_short_id: int, rec) -> Optional[PublicNode]:
        """9.3: process one announce record; returns the node when both keys are known and match."""
        sk, ak = self.partial.pop(header_short_id, (None, None))
        sk, ak = rec.signing_key or sk, rec.agreement_key or ak
        if sk is None and ak is None:
            return None
        if sk is None or ak is None:
            known = self.identify(header_short_id, [rec])
            if known is None:
                self.partial[header_short_id] = (sk, ak)
            return known
        node = PublicNode(sk, ak)
        if node.short_id != header_short_id:
            return None                                  # keys that do not match are discarded
        nodes = self.nodes.setdefault(header_short_id, [])
        if node not in nodes:
            nodes.append(node)
        return node


@dataclass
class Received:
    opened: OpenedPacket
    sender: Optional[bytes]       # full node id, None while unknown (announce form, one key heard)
    replay_checked: bool


class Receiver:
    """4.7 with the replay check (4.8) and key learning (9.3). One replay window per sender full
    node id, shared by both packet forms. An announce-form packet is replay-checked only once its
    sender's full node id is known (both keys heard); before that it only teaches keys."""

    def __init__(self, network_key: bytes, open_mode: bool = False):
        self.network_key, self.open_mode = network_key, open_mode
        self.neighbours = Neighbours()
        self.windows: dict[bytes, ReplayWindow] = {}

    def receive(self, packet: bytes) -> Received:
        opened = open_packet(packet, self.network_key, self.neighbours.known(), open_mode=self.open_mode)
        header = opened.header
        announces = [r for r in opened.records if isinstance(r, AnnounceRecord)]
        sender = opened.sender_node_id
        if header.announce:
            node = self.neighbours.identify(header.sender, announces)
            sender = node.node_id if node else None
        if sender is not None:
            if not self.windows.setdefault(sender, ReplayWindow()).accept(header.counter):
                raise WireError("replay", f"counter {header.counter} of {sender.hex()}")
        for rec in announces:
            self.neighbours.learn(header.sender, rec)
        return Received(opened, sender, sender is not None)


# ---------------------------------------------------------------------------------------------
# Fragmentation, reassembly, acknowledgements (section 8)
# ---------------------------------------------------------------------------------------------


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def fragment_bundle(bundle: bytes, mtu: int, transfer: int, next_hop: Optional[int] = None,
                    ack_wanted: Optional[bool] = None) -> list:
    """8.1. ack_wanted defaults to 'a next hop is given' (the reference default, 8.5)."""
    if mtu < MIN_MTU:
        raise WireError("invalidValue", f"MTU {mtu} below {MIN_MTU}")
    if ack_wanted is None:
        ack_wanted = next_hop is not None
    nh = 4 if next_hop is not None else 0
    if OVERHEAD_ORDINARY + 1 + nh + (vsize(transfer) if ack_wanted else 0) + len(bundle) <= mtu:
        return [BundleRecord(bundle, next_hop, transfer if ack_wanted else None)]

    def room(c: int) -> int:
        return mtu - OVERHEAD_ORDINARY - 1 - nh - vsize(transfer) - vsize(c - 1) - vsize(c)

    c = 2
    while True:
        r = room(c)
        if r <= 0:
            raise WireError("tooLarge", "bundle too large for this MTU")
        need = _ceil_div(len(bundle), r)
        if need <= c:
            break
        c = need
    if c > MAX_FRAGMENTS:
        raise WireError("tooLarge", "bundle too large for this MTU")
    size = _ceil_div(len(bundle), c)
    return [FragmentRecord(transfer, i, c, bundle[i * size:min(len(bundle), (i + 1) * size)], next_hop)
            for i in range(c)]


def ack_entry(transfer: int, received_indices: Iterable[int]) -> AckEntry:
    """5.5 canonical construction."""
    got = set(received_indices)
    n = 0
    while n in got:
        n += 1
    above = [i for i in got if i > n]
    bitmap = bytearray()
    if above:
        bitmap = bytearray((max(above) - n - 1) // 8 + 1)
        for i in above:
            bitmap[(i - n - 1) // 8] |= 1 << ((i - n - 1) % 8)
    return AckEntry(transfer, n, bytes(bitmap))


def ack_entry_received(entry: AckEntry, count: Optional[int] = None) -> set[int]:
    """8.4: the fragment indices an entry marks as received. Given the transfer's fragment
    count, bits for indices at or above it are ignored (5.5)."""
    got = set(range(entry.received))
    for j, byte in enumerate(entry.bitmap):
        for i in range(8):
            if byte >> i & 1:
                got.add(entry.received + 1 + 8 * j + i)
    if count is not None:
        got = {i for i in got if i < count}
    return got


def ack_missing(entry: AckEntry, count: int) -> list[int]:
    """8.5 (flooded): the indices below count that the entry does not mark as received."""
    got = ack_entry_received(entry, count)
    return [i for i in range(count) if i not in got]


class Reassembler:
    """8.3 (rules 1-4, 6 per transfer, 7); timeouts and the global memory cap are left out. A
    completed transfer is remembered with its fragments' data (the reference engine keeps a CRC-32C
    of each): a late fragment is re-acknowledged only when it is the same fragment (rule 7)."""

    def __init__(self):
        self.partial: dict[tuple[bytes, int], dict] = {}
        self.completed: dict[tuple[bytes, int], list[bytes]] = {}   # -> each fragment's data

    def add(self, sender: bytes, frag: FragmentRecord) -> tuple[Optional[bytes], Optional[AckEntry]]:
        """Returns (completed bundle or None, ack entry to send or None if the fragment was dropped)."""
        key = (sender, frag.transfer)
        if key in self.completed:
            done = self.completed[key]
            if len(done) == frag.count and frag.index < len(done) and done[frag.index] == frag.data:
                return None, AckEntry(frag.transfer, frag.count)
            del self.completed[key]     # the sender reused the number for another bundle
        t = self.partial.setdefault(key, {"count": frag.count, "data": {}})
        if t["count"] != frag.count:
            return None, None
        if t["data"].get(frag.index, frag.data) != frag.data:
            t = self.partial[key] = {"count": frag.count, "data": {}}   # another bundle: start again
        if frag.index not in t["data"]:
            if sum(map(len, t["data"].values())) + len(frag.data) > MAX_BUNDLE:
                del self.partial[key]
                return None, None
            t["data"][frag.index] = frag.data
        if len(t["data"]) == t["count"]:
            del self.partial[key]
            self.completed[key] = [t["data"][i] for i in range(frag.count)]
            return b"".join(t["data"][i] for i in range(frag.count)), AckEntry(frag.transfer, frag.count)
        return None, ack_entry(frag.transfer, t["data"].keys())


# ---------------------------------------------------------------------------------------------
# Announce parts (section 9, rule 2)
# ---------------------------------------------------------------------------------------------


def cut_name(name: str) -> str:
    """9.2: a name over 32 bytes is cut at the last whole UTF-8 character within 32 bytes."""
    out = ""
    for ch in name:
        if len((out + ch).encode()) > MAX_NAME:
            break
        out += ch
    return out


def announce_parts(capabilities: int, signing_key: bytes, agreement_key: bytes,
                   name: Optional[str], mtu: int) -> list[AnnounceRecord]:
    """9.2: the whole announce if 29 + 1 + 1 + fields <= MTU; otherwise parts taking, in the
    order name, signing key, agreement key, each field while 29 + 1 + 1 + bytes <= MTU."""
    if name is not None:
        name = cut_name(name)
    room = mtu - OVERHEAD_ANNOUNCE - 2
    fields = []
    if name is not None:
        fields.append(("name", name, len(name.encode())))
    fields += [("signing_key", signing_key, 32), ("agreement_key", agreement_key, 32)]
    if sum(f[2] for f in fields) <= room:
        return [AnnounceRecord(capabilities, signing_key, agreement_key, name)]
    parts: list[AnnounceRecord] = []
    current, used = None, 0
    for attr, value, size in fields:
        if current is not None and used + size > room:
            parts.append(current)
            current = None
        if current is None:
            current, used = AnnounceRecord(capabilities), 0
        setattr(current, attr, value)
        used += size
    parts.append(current)
    return parts


# ---------------------------------------------------------------------------------------------
# Links: bytes on the line (section 18)
# ---------------------------------------------------------------------------------------------


def crc32c(data: bytes) -> int:
    """18.1: CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    """18.1: COBS as in Cheshire and Baker's paper: always ends with a block (so a final empty
    block 01 follows a trailing 254-byte run)."""
    out = bytearray([0])
    at, code = 0, 1
    for b in data:
        if b == 0:
            out[at] = code
            at = len(out)
            out.append(0)
            code = 1
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[at] = code
                at = len(out)
                out.append(0)
                code = 1
    out[at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> Optional[bytes]:
    """18.1: None when the bytes are not COBS (a zero, or a block running past the end)."""
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            return None
        block = data[i + 1:i + code]
        if 0 in block:
            return None
        out += block
        i += code
        if code != 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def serial_frame(packet: bytes) -> bytes:
    """18.1: 00 || COBS(packet || CRC-32C little-endian) || 00."""
    return b"\x00" + cobs_encode(packet + crc32c(packet).to_bytes(4, "little")) + b"\x00"


class SerialReceiver:
    """18.1 receiving: collect non-zero bytes; at each 00 decode, check, pass up or drop."""

    def __init__(self, max_packet: int = MAX_PACKET):
        self.limit = len(cobs_encode(bytes([1]) * (max_packet + 4)))
        self.buffer = bytearray()
        self.overflow = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        out = []
        for b in data:
            if b != 0:
                if len(self.buffer) < self.limit:
                    self.buffer.append(b)
                else:
                    self.overflow = True
                continue
            buf, overflow = bytes(self.buffer), self.overflow
            self.buffer.clear()
            self.overflow = False
            if not buf:
                continue
            body = None if overflow else cobs_decode(buf)
            if body is None or len(body) < 5 or crc32c(body[:-4]) != int.from_bytes(body[-4:], "little"):
                self.dropped += 1
                continue
            out.append(body[:-4])
        return out


FEND, FESC, TFEND, TFESC = 0xC0, 0xDB, 0xDC, 0xDD


def kiss_escape(data: bytes) -> bytes:
    return data.replace(bytes([FESC]), bytes([FESC, TFESC])).replace(bytes([FEND]), bytes([FESC, TFEND]))


def kiss_frame(type_byte: int, data: bytes) -> bytes:
    """18.2: FEND || escape(type || data) || FEND."""
    return bytes([FEND]) + kiss_escape(bytes([type_byte]) + data) + bytes([FEND])


KISS_PARAMETERS = (("txDelay", 1), ("persistence", 2), ("slotTime", 3), ("txTail", 4))


def kiss_parameter_frames(values: dict, port: int = 0) -> list[bytes]:
    """18.3: one command frame per parameter, in the order TXDELAY, P, SLOTTIME, TXTAIL."""
    return [kiss_frame(port << 4 | cmd, bytes([values[name]])) for name, cmd in KISS_PARAMETERS]


def ax25_address(callsign: str, last: bool, command: bool) -> bytes:
    """18.4: 6 characters shifted left, space padded; SSID byte C 1 1 SSID E."""
    call, _, ssid = callsign.upper().partition("-")
    if not (1 <= len(call) <= 6 and all(c.isascii() and c.isalnum() for c in call)):
        raise ValueError(f"bad callsign {callsign!r}")
    n = int(ssid) if ssid else 0
    if not 0 <= n <= 15:
        raise ValueError(f"bad SSID in {callsign!r}")
    return bytes(ord(c) << 1 for c in call.ljust(6)) + bytes([(0x80 if command else 0) | 0x60 | n << 1 | int(last)])


def ax25_parse_address(field: bytes) -> Optional[tuple[str, bool]]:
    chars = [b >> 1 for b in field[:6]]
    if not all(c == 0x20 or 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A for c in chars):
        return None
    call = bytes(chars).decode().strip(" ")
    if not 1 <= len(call) <= 6 or " " in call:
        return None
    ssid = (field[6] >> 1) & 0x0F
    return (call if ssid == 0 else f"{call}-{ssid}"), bool(field[6] & 1)


def ax25_ui_frame(source: str, info: bytes) -> bytes:
    """18.4: QST (C = 1) || source (C = 0, last) || 03 || F0 || info."""
    return ax25_address("QST", False, True) + ax25_address(source, True, False) + b"\x03\xf0" + info


def ax25_ui_info(frame: bytes) -> Optional[bytes]:
    """18.4: the information field of a UI frame with PID F0, or None."""
    if len(frame) < 16:
        return None
    dest = ax25_parse_address(frame[0:7])
    src = ax25_parse_address(frame[7:14])
    if dest is None or dest[1] or src is None:
        return None
    i, last, hops = 14, src[1], 0
    while not last:
        if i + 7 > len(frame) or hops >= 8:
            return None
        a = ax25_parse_address(frame[i:i + 7])
        if a is None:
            return None
        last = a[1]
        i += 7
        hops += 1
    if i + 2 > len(frame) or frame[i] & 0xEF != 0x03 or frame[i + 1] != 0xF0:
        return None
    return frame[i + 2:]


def kiss_data_frame(packet: bytes, port: int = 0, callsign: Optional[str] = None) -> bytes:
    """18.2/18.4: a packet in a KISS data frame (command 0), in an AX.25 UI frame with a callsign."""
    return kiss_frame(port << 4, ax25_ui_frame(callsign, packet) if callsign else packet)


class KISSReceiver:
    """18.2 receiving: frames between FENDs; bad escapes and oversize frames dropped; only data
    frames of our port (with AX.25: UI frames with PID F0) carry packets; the rest skipped."""

    def __init__(self, port: int = 0, callsign: Optional[str] = None, max_data: int = 2048):
        self.port, self.callsign, self.max_data = port, callsign, max_data
        self.buffer = bytearray()
        self.escaped = self.bad = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        out = []
        for b in data:
            if b == FEND:
                if self.buffer:
                    if self.bad or self.escaped:
                        self.dropped += 1
                    else:
                        packet = self._packet(bytes(self.buffer))
                        if packet is None:
                            self.dropped += 1
                        else:
                            out.append(packet)
                self.buffer.clear()
                self.escaped = self.bad = False
                continue
            if self.bad:
                continue
            if self.escaped:
                self.escaped = False
                if b not in (TFEND, TFESC):
                    self.bad = True
                    continue
                b = FEND if b == TFEND else FESC
            elif b == FESC:
                self.escaped = True
                continue
            if len(self.buffer) > self.max_data:
                self.bad = True
                continue
            self.buffer.append(b)
        return out

    def _packet(self, frame: bytes) -> Optional[bytes]:
        if frame[0] != self.port << 4 or len(frame) < 2:
            return None
        return ax25_ui_info(frame[1:]) if self.callsign else frame[1:]


def tcp_frame(packet: bytes) -> bytes:
    """18.6: u16 big-endian length, then the packet."""
    return len(packet).to_bytes(2, "big") + packet


def tcp_unframe(stream: bytes) -> list[bytes]:
    out, i = [], 0
    while len(stream) - i >= 2:
        n = int.from_bytes(stream[i:i + 2], "big")
        if len(stream) - i - 2 < n:
            break
        if n:
            out.append(stream[i + 2:i + 2 + n])
        i += 2 + n
    return out


# ---------------------------------------------------------------------------------------------
# Join codes and identity codes (section 19)
# ---------------------------------------------------------------------------------------------

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
JOIN_PREFIX = "courier1-"
IDENTITY_PREFIX = "courier-id1-"


class CodeError(Exception):
    pass


def checked_base32(payload: bytes) -> str:
    """19: base32 (lower case, no padding) of payload || CRC-32C big-endian."""
    data = payload + crc32c(payload).to_bytes(4, "big")
    bits = "".join(f"{b:08b}" for b in data)
    bits += "0" * (-len(bits) % 5)
    return "".join(BASE32[int(bits[i:i + 5], 2)] for i in range(0, len(bits), 5))


def read_checked_base32(text: str, payload_length: int) -> bytes:
    bits = ""
    for c in text:
        if c not in BASE32:
            raise CodeError(f"character {c!r}")
        bits += f"{BASE32.index(c):05b}"
    whole, left = divmod(len(bits), 8)
    if whole != payload_length + 4 or left >= 5:
        raise CodeError("length")
    if "1" in bits[whole * 8:]:
        raise CodeError("unused bits not zero")
    data = bytes(int(bits[i:i + 8], 2) for i in range(0, whole * 8, 8))
    if crc32c(data[:payload_length]).to_bytes(4, "big") != data[payload_length:]:
        raise CodeError("check")
    return data[:payload_length]


def _code_text(code: str, prefix: str) -> str:
    text = code.lower().replace(" ", "")
    if not text.startswith(prefix):
        raise CodeError("prefix")
    return text[len(prefix):]


def join_code(network_key: bytes, open_mode: bool) -> str:
    """19.1: flags (bit 0 open) || network key."""
    return JOIN_PREFIX + checked_base32(bytes([1 if open_mode else 0]) + network_key)


def read_join_code(code: str) -> tuple[bytes, bool]:
    payload = read_checked_base32(_code_text(code, JOIN_PREFIX), 33)
    if payload[0] & 0xFE:
        raise CodeError(f"unknown flags {payload[0]:02x}")
    return payload[1:], bool(payload[0] & 1)


def identity_code(signing_public: bytes, agreement_public: bytes) -> str:
    """19.2: signing public key || agreement public key."""
    return IDENTITY_PREFIX + checked_base32(signing_public + agreement_public)


def read_identity_code(code: str) -> tuple[bytes, bytes]:
    payload = read_checked_base32(_code_text(code, IDENTITY_PREFIX), 64)
    return payload[:32], payload[32:]
