#!/usr/bin/env python3
"""Checks protocol/vectors/*.json in both directions with courier_wire.py (written from SPEC.md alone).

Usage: python3 protocol/reference/check_vectors.py
Prints one line per check and ends with "N passed, M failed"; exits 1 if anything failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import courier_wire as cw  # noqa: E402
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

PROTOCOL = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
VECTORS = os.path.join(PROTOCOL, "vectors")

passed = failed = 0


def check(name: str, fn) -> None:
    """fn returns True / a note string on success; False or an exception is a failure."""
    global passed, failed
    try:
        result = fn()
        ok = result is not False
        note = f"  ({result})" if isinstance(result, str) else ""
    except Exception as e:  # noqa: BLE001
        ok, note = False, f"  -- {type(e).__name__}: {e}"
        if os.environ.get("VERBOSE"):
            traceback.print_exc()
    if ok:
        passed += 1
        print(f"PASS  {name}{note}")
    else:
        failed += 1
        print(f"FAIL  {name}{note}")


def expect_equal(actual, expected):
    if actual != expected:
        raise AssertionError(f"got {actual!r}, expected {expected!r}")
    return True


def expect_error(fn, kinds=None):
    try:
        fn()
    except cw.WireError as e:
        if kinds and e.kind not in kinds:
            raise AssertionError(f"rejected, but as {e.kind} ({e.detail}); expected one of {kinds}")
        return f"rejected: {e}"
    raise AssertionError("accepted")


def load(name):
    with open(os.path.join(VECTORS, name), encoding="utf-8") as f:
        return json.load(f)


def identity(seeds) -> cw.Identity:
    return cw.Identity(bytes.fromhex(seeds["signingSeed"]), bytes.fromhex(seeds["agreementSeed"]))


def zstd_version() -> str:
    try:
        out = subprocess.run(["zstd", "--version"], capture_output=True, text=True).stdout
        return out.split(" v")[1].split(",")[0] if " v" in out else out.strip()
    except OSError:
        return "missing"


ZSTD_VERSION = zstd_version()
NODE_A = cw.Identity(bytes(range(0x00, 0x20)), bytes(range(0x20, 0x40)))
NODE_B = cw.Identity(bytes(range(0x40, 0x60)), bytes(range(0x60, 0x80)))
NETWORK_KEY = bytes(range(0x80, 0xA0))

# ---------------------------------------------------------------------------------------------
# keys.json
# ---------------------------------------------------------------------------------------------


def check_keys():
    keys = load("keys.json")
    for node in keys["nodes"]:
        ident = identity(node["identity"])
        nk = bytes.fromhex(node["networkKey"])
        p = f"keys {node['name']}"
        check(f"{p}: signing public", lambda: expect_equal(ident.signing_public.hex(), node["signingPublic"]))
        check(f"{p}: agreement public", lambda: expect_equal(ident.agreement_public.hex(), node["agreementPublic"]))
        check(f"{p}: node id", lambda: expect_equal(ident.node_id.hex(), node["nodeId"]))
        check(f"{p}: short id", lambda: expect_equal(cw.short_id_text(ident.short_id), node["shortId"]))
        check(f"{p}: packet key", lambda: expect_equal(cw.packet_key(nk, ident.node_id).hex(), node["packetKey"]))
        check(f"{p}: announce key", lambda: expect_equal(cw.announce_key(nk).hex(), node["announceKey"]))
    for g in keys["groups"]:
        check(f"keys group {g['name']!r}: id", lambda: expect_equal(f"{cw.group_id(g['name']):04x}", g["groupId"]))
    for d in keys["digests"]:
        bid = cw.BundleId.parse(d["bundleId"])
        p = f"keys digest {d['bundleId']}"
        check(f"{p}: text form round trip", lambda: expect_equal(bid.text(), d["bundleId"]))
        check(f"{p}: fixed form", lambda: expect_equal(bid.fixed().hex(), d["fixedBytes"]))
        check(f"{p}: digest", lambda: expect_equal(f"{bid.digest():08x}", d["digest"]))
        check(f"{p}: wire form decodes back",
              lambda: expect_equal(cw.BundleId.read(cw.Reader(bid.wire())), bid))


# ---------------------------------------------------------------------------------------------
# varints.json
# ---------------------------------------------------------------------------------------------


def check_varints():
    for v in load("varints.json"):
        data = bytes.fromhex(v["hex"])
        if "error" in v:
            # 12.2: `error` is free text for people; the check is only that decoding fails.
            check(f"varint {v['hex']} rejected ({v['error']})",
                  lambda: expect_error(lambda: cw.decode_varint(data), {"invalidVarint", "truncated"}))
            continue
        check(f"varint {v['value']} encodes to {v['hex']}",
              lambda: expect_equal(cw.encode_varint(v["value"]).hex(), v["hex"]))
        check(f"varint {v['hex']} decodes to {v['value']}, all bytes consumed",
              lambda: expect_equal(cw.decode_varint(data), (v["value"], len(data))))


# ---------------------------------------------------------------------------------------------
# bundles.json
# ---------------------------------------------------------------------------------------------


def parse_destination(text: str):
    if text == "everyone":
        return cw.DEST_EVERYONE, None
    kind, value = text.split(":")
    return {"node": cw.DEST_NODE, "group": cw.DEST_GROUP}[kind], int(value, 16)


def destination_text(b: cw.Bundle) -> str:
    if b.dest_type == cw.DEST_EVERYONE:
        return "everyone"
    if b.dest_type == cw.DEST_NODE:
        return f"node:{b.destination:08x}"
    return f"group:{b.destination:04x}"


def vector_content(v) -> bytes:
    """12.2: binary content (receipts) is in contentHex, and contentUtf8 is then ""."""
    if "contentHex" in v:
        expect_equal(v["contentUtf8"], "")
        return bytes.fromhex(v["contentHex"])
    return v["contentUtf8"].encode("utf-8")


def vector_extensions(v):
    """12.2: extensions, in wire order, as (type, value) pairs; None when absent."""
    if "extensions" not in v:
        return None
    return [(e["type"], bytes.fromhex(e["value"])) for e in v["extensions"]]


def check_bundles():
    exact_zstd = ZSTD_VERSION == "1.5.4"
    for v in load("bundles.json"):
        p = f"bundle '{v['name']}'"
        origin = identity(v["origin"])
        recipient = identity(v["recipient"]) if "recipient" in v else None
        content = vector_content(v)
        extensions = vector_extensions(v)
        dictionaries = (1,) if v.get("dictionary", True) else ()
        expected = bytes.fromhex(v["bundleHex"])
        dest_type, destination = parse_destination(v["destination"])
        inputs = dict(dest_type=dest_type, destination=destination, lifetime=v["lifetime"],
                      hop_limit=v["hopLimit"], priority=v.get("priority"), respond_by=v.get("respondBy"),
                      reference=cw.BundleId.parse(v["reference"]) if "reference" in v else None,
                      sign=v["sign"], recipient=recipient.public() if recipient else None,
                      extensions=extensions)

        # --- decode direction -------------------------------------------------------------
        decoded = cw.decode_bundle(expected)

        def fields():
            b = decoded
            got = {"kind": b.kind, "origin": f"{b.origin:08x}", "created": b.created, "sequence": b.sequence,
                   "lifetime": b.lifetime, "hopLimit": b.hop_limit, "destination": destination_text(b),
                   "priority": b.priority, "respondBy": b.respond_by,
                   "reference": b.reference.text() if b.reference else None, "sign": b.signed,
                   "e2e": b.e2e, "compression": cw.compression_name(b), "extensions": b.extensions}
            want = {"kind": v["kind"], "origin": cw.short_id_text(origin.short_id), "created": v["created"],
                    "sequence": v["sequence"], "lifetime": v["lifetime"], "hopLimit": v["hopLimit"],
                    "destination": v["destination"], "priority": v.get("priority"),
                    "respondBy": v.get("respondBy"), "reference": v.get("reference"), "sign": v["sign"],
                    "e2e": recipient is not None, "compression": v["compression"], "extensions": extensions}
            return expect_equal(got, want)

        check(f"{p}: decode -> fields equal the inputs", fields)
        check(f"{p}: decoded bundle re-encodes to bundleHex", lambda: expect_equal(decoded.encode().hex(), v["bundleHex"]))
        if v["sign"]:
            def verifies():
                expect_equal(cw.verify_bundle(decoded, [NODE_B.public(), origin.public()]), origin.public())
                # Cross-check the pure-Python cofactorless verifier (6.12) with OpenSSL's.
                Ed25519PublicKey.from_public_bytes(origin.signing_public).verify(decoded.signature,
                                                                                 decoded.signing_input())
                return "cofactorless (6.12), and OpenSSL agrees"

            check(f"{p}: signature verifies with A's signing key", verifies)

            def relayed():
                relay = cw.decode_bundle(bytes([(9 << 4) | expected[0] & 0x0F]) + expected[1:])
                return expect_equal(cw.verify_bundle(relay, [origin.public()]), origin.public()) and "hop limit 7"

            check(f"{p}: signature still verifies after a relay rewrites the hop limit", relayed)

            def tampered():
                bad = bytearray(expected)
                bad[len(decoded.header()) ] ^= 1
                return expect_equal(cw.verify_bundle(cw.decode_bundle(bytes(bad)), [origin.public()]), None)

            check(f"{p}: signature fails on a changed body", tampered)
        check(f"{p}: origin proven by {v.get('provenBy')} (6.12)",
              lambda: expect_equal(cw.origin_proof(decoded, recipient, [origin.public()]) or "none",
                                   v["provenBy"]) and v["provenBy"])
        if v["provenBy"] == "end-to-end":
            def not_by_others():
                # The tag proves nothing to another node, nor under another origin's keys.
                wrong = [cw.PublicNode(origin.signing_public, NODE_B.agreement_public)]
                return (expect_equal(cw.origin_proof(decoded, recipient, wrong), None)
                        and expect_equal(cw.origin_proof(decoded, origin, [origin.public()]), None)
                        and "not proven with other keys or at another node")

            check(f"{p}: the end-to-end tag proves nothing with other keys or at another node", not_by_others)
        if recipient:
            check(f"{p}: decrypts with B's key (origin A among the candidates)",
                  lambda: len(cw.e2e_open(decoded, recipient, [NODE_B.public(), origin.public()])) > 0)
            check(f"{p}: decryption fails with B's key but the wrong origin key",
                  lambda: expect_error(lambda: cw.e2e_open(decoded, recipient, [
                      cw.PublicNode(origin.signing_public, NODE_B.agreement_public)]), {"decryptionFailed"}))

            def wrong_recipient():
                # Another node (A itself) pretending to be the recipient, also with the destination forced.
                fake = cw.decode_bundle(expected)
                fake.destination = origin.short_id
                return expect_error(lambda: cw.e2e_open(fake, origin, [origin.public()]), {"decryptionFailed"})

            check(f"{p}: decryption fails with any other recipient key", wrong_recipient)
            check(f"{p}: a non-recipient is refused",
                  lambda: expect_error(lambda: cw.e2e_open(decoded, origin, [origin.public()]), {"decryptionFailed"}))
            if v["sign"]:
                def aad_covers_s():
                    # 3.5: the AAD is the header as sent, S included: strip the signature and clear S.
                    unsigned = cw.decode_bundle(expected)
                    unsigned.signed, unsigned.signature = False, None
                    return expect_error(lambda: cw.e2e_open(unsigned, recipient, [origin.public()]),
                                        {"decryptionFailed"})

                check(f"{p}: with S cleared and the signature removed, decryption fails (AAD covers S)",
                      aad_covers_s)

        def content_read():
            got = cw.read_content(decoded, recipient, [origin.public()])
            expect_equal(got, content)
            return "contentHex" if "contentHex" in v else "contentUtf8"

        check(f"{p}: content reads back (decrypt, decompress) to the vector's content", content_read)
        if v["kind"] == 6:
            def receipt_ids():
                ids = cw.decode_receipt_content(content)
                expect_equal(b"".join(i.wire() for i in ids), content)
                return f"{len(ids)} ids: {', '.join(i.text() for i in ids)}"

            check(f"{p}: receipt content parses as whole wire-form bundle ids and re-encodes", receipt_ids)
        if v["kind"] == cw.KIND_IDENTITY:
            def identity_keys():
                node, name, wants = cw.verify_identity(decoded, content)
                expect_equal(node, origin.public())
                expect_equal(cw.encode_identity_content(node, name, wants), content)
                expect_equal(cw.deliverable(decoded), False)
                return f"A's keys, name {name!r}, answer wanted {wants}; signed by the key it carries; not for the inbox"

            check(f"{p}: identity content carries the origin's own keys (9.1)", identity_keys)
        if v["kind"] == cw.KIND_FAILURE:
            def failure_entries():
                entries = cw.decode_failure_content(content)
                expect_equal(cw.encode_failure_content(entries), content)
                return ", ".join(f"{cw.FAILURE_REASONS.get(r, r)} {i.text()}" for r, i in entries)

            check(f"{p}: failure notice content parses as whole (reason, id) entries and re-encodes", failure_entries)
        if extensions is not None:
            def extension_rules():
                critical = cw.unknown_critical_extensions(decoded)
                expect_equal(cw.deliverable(decoded), not critical)
                # Forwarded unchanged: a relay re-encodes the same bytes, extensions in the same order.
                relay = cw.decode_bundle(bytes([(9 << 4) | expected[0] & 0x0F]) + expected[1:])
                expect_equal(relay.extensions, extensions)
                return f"types {[t for t, _ in extensions]} in wire order; unknown critical {critical}: " \
                       f"stored and forwarded, {'not ' if critical else ''}delivered"

            check(f"{p}: extensions kept in order; odd unknown types block delivery (6.6)", extension_rules)
        if decoded.compression != cw.COMP_NONE:
            def frame_shape():
                frame = cw.e2e_open(decoded, recipient, [origin.public()]) if recipient else decoded.body
                info = cw.zstd_frame_info(frame)
                ok = (info["content_size"] is None and not info["checksum"] and info["dictionary_id"] is None
                      and info["window"] <= cw.MAX_WINDOW)
                wlog = cw.zstd_cli_window_log(len(content), decoded.compression == cw.COMP_ZSTD_DICT)
                expect_equal(info["window"], 1 << wlog)
                return ok and f"one magicless frame, window {info['window']} (log {wlog} for {len(content)} " \
                              f"bytes), no size/checksum/dict id"

            check(f"{p}: body is one frame within 7.2 (the table's form)", frame_shape)

        # --- encode direction --------------------------------------------------------------
        vector_frame = (decoded.compression, decoded.dictionary_id,
                        cw.e2e_open(decoded, recipient, [origin.public()]) if recipient else decoded.body)
        check(f"{p}: encode with the vector's compressed body -> bundleHex (compressor-independent)",
              lambda: expect_equal(cw.make_bundle(origin, v["kind"], content, v["created"], v["sequence"],
                                                  compressed=vector_frame, **inputs).encode().hex(),
                                   v["bundleHex"]))

        def full_encode():
            made = cw.make_bundle(origin, v["kind"], content, v["created"], v["sequence"],
                                  dictionaries=dictionaries, **inputs)
            expect_equal(cw.compression_name(made), v["compression"])
            expect_equal(made.encode().hex(), v["bundleHex"])
            return f"zstd CLI {ZSTD_VERSION} -19, input as a file, magic stripped" + \
                ("; encoder without a dictionary (7.5)" if not dictionaries else "")

        if exact_zstd:
            check(f"{p}: encode inputs -> compression choice and bundleHex, byte-exact", full_encode)
        else:
            print(f"SKIP  {p}: byte-exact compression needs zstd 1.5.4 (have {ZSTD_VERSION}); "
                  "decompression and everything else is checked above")


# ---------------------------------------------------------------------------------------------
# packets.json
# ---------------------------------------------------------------------------------------------


def record_from_json(j):
    t = j["type"]
    nh = int(j["nextHop"], 16) if "nextHop" in j else None
    if t == "bundle":
        return cw.BundleRecord(bytes.fromhex(j["data"]), nh, j.get("transfer"),
                               int(j["compactFrom"], 16) if "compactFrom" in j else None, j.get("run", False))
    if t == "fragment":
        return cw.FragmentRecord(j["transfer"], j["index"], j["count"], bytes.fromhex(j["data"]), nh)
    if t == "ack":
        return cw.AckRecord(int(j["target"], 16),
                            [cw.AckEntry(a["transfer"], a["received"], bytes.fromhex(a["bitmap"])) for a in j["acks"]],
                            j.get("ranges", False))
    if t == "announce":
        return cw.AnnounceRecord(j["capabilities"],
                                 bytes.fromhex(j["signingKey"]) if "signingKey" in j else None,
                                 bytes.fromhex(j["agreementKey"]) if "agreementKey" in j else None,
                                 j.get("name"))
    if t == "summary":
        return cw.SummaryRecord([int(d, 16) for d in j["digests"]], j["isFinal"])
    if t == "dictionaries":
        return cw.DictionariesRecord([(e["id"], int(e["fingerprint"], 16)) for e in j.get("dictionaries", [])],
                                     j.get("isRequest", False))
    if t == "piece":
        return cw.RunPiece(int(j["nextHop"], 16), j["transfer"], j.get("total"), bytes.fromhex(j["data"]))
    if t == "unknown":
        return cw.UnknownRecord(j["code"], j["flags"], bytes.fromhex(j["data"]))
    raise ValueError(t)


def check_packets():
    for v in load("packets.json"):
        p = f"packet '{v['name']}'"
        nk = bytes.fromhex(v["networkKey"])
        sender = identity(v["sender"])
        records = [record_from_json(r) for r in v["records"]]
        payload = bytes.fromhex(v["payloadHex"])
        packet = bytes.fromhex(v["packetHex"])
        salt = v.get("announceSalt")
        known = {sender.short_id: [sender.node_id]}

        check(f"{p}: records -> payloadHex", lambda: expect_equal(cw.encode_payload(records).hex(), v["payloadHex"]))
        check(f"{p}: seal -> packetHex",
              lambda: expect_equal(cw.seal_packet(nk, sender.node_id, v["counter"], payload, open_mode=v["open"],
                                                  announce_salt=salt).hex(), v["packetHex"]))

        def open_it():
            opened = cw.open_packet(packet, nk, {} if salt is not None else known, open_mode=v["open"])
            h = opened.header
            expect_equal((h.sender, h.counter, h.salt, h.open, h.announce),
                         (sender.short_id, v["counter"], salt, v["open"], salt is not None))
            expect_equal(opened.sender_node_id, None if salt is not None else sender.node_id)
            expect_equal(opened.payload.hex(), v["payloadHex"])
            return expect_equal(opened.records, records)

        check(f"{p}: open packetHex -> header, payloadHex, records", open_it)
        check(f"{p}: payloadHex decodes to the records",
              lambda: expect_equal(cw.decode_payload(payload, None if salt is not None else sender.short_id), records))

        def tamper():
            bad = bytearray(packet)
            bad[-1] ^= 0x80
            return expect_error(lambda: cw.open_packet(bytes(bad), nk, known, open_mode=True),
                                {"authenticationFailed"})

        check(f"{p}: a flipped tag bit fails authentication", tamper)
        if v["open"]:
            check(f"{p}: a sealed federation rejects the open packet",
                  lambda: expect_error(lambda: cw.open_packet(packet, nk, known), {"unsupportedFeature"}))
        elif salt is None:
            check(f"{p}: an open-mode receiver also accepts the sealed packet",
                  lambda: expect_equal(cw.open_packet(packet, nk, known, open_mode=True).payload, payload))
            check(f"{p}: unknown sender short id is rejected",
                  lambda: expect_error(lambda: cw.open_packet(packet, nk, {}), {"unknownSender"}))
            collide = {sender.short_id: [NODE_B.node_id, sender.node_id]}
            check(f"{p}: short-id collision: the candidate whose key authenticates is the sender (2.3)",
                  lambda: expect_equal(cw.open_packet(packet, nk, collide).sender_node_id, sender.node_id))
        if any(isinstance(r, cw.AnnounceRecord) for r in records):
            ann = next(r for r in records if isinstance(r, cw.AnnounceRecord))
            if ann.signing_key is not None and ann.agreement_key is not None:
                def announce_matches():
                    node = cw.PublicNode(ann.signing_key, ann.agreement_key)
                    expect_equal(node.short_id, cw.decode_packet_header(packet).sender)
                    rx = cw.Receiver(nk, open_mode=v["open"])
                    got = rx.receive(packet)
                    expect_equal((got.sender, got.replay_checked), (sender.node_id, True))
                    return expect_equal(rx.neighbours.candidates(sender.short_id), [sender.public()]) and \
                        "header short id equals the short id of the announced keys (9.3); learned, replay-checked"

                check(f"{p}: announce keys match the header sender", announce_matches)
            else:
                def partial_announce():
                    # 9.3: one key only: held by header short id; the node id cannot be checked yet,
                    # and the packet is not replay-checked (4.7 step 7): it only teaches keys.
                    rx = cw.Receiver(nk, open_mode=True)
                    for _ in range(2):      # the same packet twice: not replay-checked yet
                        got = rx.receive(packet)
                        expect_equal((got.sender, got.replay_checked), (None, False))
                    expect_equal(rx.neighbours.candidates(sender.short_id), [])
                    expect_equal(rx.neighbours.partial[sender.short_id], (ann.signing_key, ann.agreement_key))
                    # The other key arrives (open, announce form, counter 10): now the node id is
                    # computed, its short id equals the header's, and the packet is replay-checked.
                    other = cw.AnnounceRecord(ann.capabilities,
                                              None if ann.signing_key else sender.signing_public,
                                              None if ann.agreement_key else sender.agreement_public)
                    second = cw.seal_packet(nk, sender.node_id, 10, cw.encode_payload([other]), open_mode=True,
                                            announce_salt=0x01020305)
                    got = rx.receive(second)
                    expect_equal((got.sender, got.replay_checked), (sender.node_id, True))
                    expect_equal(rx.neighbours.candidates(sender.short_id), [sender.public()])
                    # One window per full node id, shared by both forms: an ordinary-form packet
                    # with the same counter 10 is a replay.
                    ordinary = cw.seal_packet(nk, sender.node_id, 10, cw.encode_payload([cw.SummaryRecord([], True)]))
                    expect_error(lambda: rx.receive(ordinary), {"replay"})
                    return "held as partial, not replay-checked; completed by the other key; window shared"

                check(f"{p}: one key only: kept until the other key arrives, then checked (9.3, 4.7)",
                      partial_announce)
                check(f"{p}: alone, the lone key gives no node id to check",
                      lambda: expect_equal(cw.Neighbours().identify(sender.short_id, [ann]), None))


# ---------------------------------------------------------------------------------------------
# fragments.json
# ---------------------------------------------------------------------------------------------


def check_fragments():
    for v in load("fragments.json"):
        p = f"fragments '{v['name']}'"
        bundle = bytes.fromhex(v["bundleHex"])
        nh = int(v["nextHop"], 16) if "nextHop" in v else None
        produced = cw.fragment_bundle(bundle, v["mtu"], v["transfer"], nh)
        check(f"{p}: fragmenter -> recordsHex",
              lambda: expect_equal([cw.encode_payload([r]).hex() for r in produced], v["recordsHex"]))
        decoded = [cw.decode_payload(bytes.fromhex(h)) for h in v["recordsHex"]]

        def each_one_record():
            for recs in decoded:
                expect_equal(len(recs), 1)
            return expect_equal([r[0] for r in decoded], produced)

        check(f"{p}: each record decodes (one record per payload)", each_one_record)
        check(f"{p}: every packet (25 + record) fits MTU {v['mtu']}",
              lambda: all(25 + len(bytes.fromhex(h)) <= v["mtu"] for h in v["recordsHex"])
              and f"packets {[25 + len(h) // 2 for h in v['recordsHex']]}")

        def reassemble():
            recs = [r[0] for r in decoded]
            if len(recs) == 1 and isinstance(recs[0], cw.BundleRecord):
                expect_equal(recs[0].transfer, None if nh is None else v["transfer"])
                return expect_equal(recs[0].bundle.hex(), v["bundleHex"]) and "whole bundle record"
            reasm = cw.Reassembler()
            result = None
            for rec in reversed(recs):          # out of order on purpose
                out, ack = reasm.add(NODE_A.node_id, rec)
                result = out or result
            expect_equal(ack, cw.AckEntry(v["transfer"], len(recs)))
            expect_equal(reasm.add(NODE_A.node_id, recs[0]), (None, cw.AckEntry(v["transfer"], len(recs))))
            # 8.3 rule 7: another bundle under the same number and count (a sender that reused it) is not
            # acknowledged as the completed one: it is collected as a new transfer.
            other = cw.FragmentRecord(recs[0].transfer, recs[0].index, len(recs), bytes(b ^ 0xFF for b in recs[0].data), recs[0].next_hop)
            out, ack = reasm.add(NODE_A.node_id, other)
            expect_equal((out, ack == cw.AckEntry(v["transfer"], len(recs))), (None, False))
            return expect_equal(result.hex(), v["bundleHex"]) and "out of order; complete ack received = count; reused number not acked"

        check(f"{p}: reassemble -> bundleHex", reassemble)


# ---------------------------------------------------------------------------------------------
# invalid.json
# ---------------------------------------------------------------------------------------------


def check_invalid():
    def bundle_and_content(data):
        b = cw.decode_bundle(data)
        cw.read_content(b)   # 12.2: some cases are rejected only when the content is read (7.2)

    def whole_packet(data):
        # 12.2: open the whole packet with the vectors' network key, node A known (one candidate).
        return cw.open_packet(data, NETWORK_KEY, {NODE_A.short_id: [NODE_A.node_id]})

    decoders = {"bundle": bundle_and_content, "payload": cw.decode_payload,
                "packet-header": cw.decode_packet_header, "packet": whole_packet,
                "receipt-content": cw.decode_receipt_content, "failure-content": cw.decode_failure_content}
    kinds = {"packet": {"authenticationFailed", "unknownSender"}}
    for v in load("invalid.json"):
        data = bytes.fromhex(v["hex"])
        check(f"invalid {v['decoder']} '{v['why']}' is rejected",
              lambda: expect_error(lambda: decoders[v["decoder"]](data), kinds.get(v["decoder"])))


# ---------------------------------------------------------------------------------------------
# Examples stated in SPEC.md itself (not in the vector files)
# ---------------------------------------------------------------------------------------------


def check_spec_examples():
    table = {0: "00", 127: "7f", 128: "8001", 300: "ac02", 16383: "ff7f", 16384: "808001", 4294967295: "ffffffff0f"}
    check("spec 1.4: varint table", lambda: expect_equal({k: cw.encode_varint(k).hex() for k in table}, table))
    check("spec 1.4: 'ffffffff10' and a 6-byte varint are rejected",
          lambda: expect_error(lambda: cw.decode_varint(bytes.fromhex("ffffffff10"))) and
          expect_error(lambda: cw.decode_varint(bytes.fromhex("8080808080 00".replace(" ", "")))))
    check("spec 1.6: Courier time of 2026-11-23T16:01Z is 1,523,041",
          lambda: expect_equal(cw.courier_time(1_704_067_200 + 1_523_041 * 60 + 59), 1_523_041))
    check("spec 3.1: network key fingerprint d719cb94", lambda: expect_equal(cw.fingerprint(NETWORK_KEY), "d719cb94"))

    def replay():
        w = cw.ReplayWindow()
        seq = [100, 100, 99, 164, 100, 101, 101, 1_000_000, 164, 165, 1_000_000, 1_000_001, 1_000_002, 1_000_003,
               1_000_004, 166, 165]
        return expect_equal([w.accept(c) for c in seq], [True, False, True, True, False, True, False, True, False,
                                                          True, False, True, True, True, True, True, False])

    def forged_far_ahead():
        # A member seals one packet as another with counter 2^32-1: the real counters are still accepted.
        w = cw.ReplayWindow()
        ok = [w.accept(c) for c in range(10, 20)] + [w.accept(0xFFFFFFFF), w.accept(0xFFFFFFFF)]
        ok += [w.accept(c) for c in range(20, 100)]
        return expect_equal((ok[:11], ok[11], all(ok[12:]), w.highest), ([True] * 11, False, True, 99))

    check("spec 4.8: replay window example", replay)
    check("spec 4.8: a counter far ahead opens a tentative window, the main one keeps accepting", forged_far_ahead)
    check("spec 5.5: ack entry for {0,1,3,9} is 06 02 01 41",
          lambda: expect_equal(cw.encode_payload([cw.AckRecord(0, [cw.ack_entry(6, {0, 1, 3, 9})])])[5:].hex(), "06020141"))
    check("spec 5.5/8.4: ack entry bitmap reads back to {0,1,3,9}",
          lambda: expect_equal(cw.ack_entry_received(cw.ack_entry(6, {0, 1, 3, 9})), {0, 1, 3, 9}))
    check("spec 3.5: an all-zero X25519 output (low-order public key) fails",
          lambda: expect_error(lambda: cw.e2e_key(NODE_A.agreement_private, bytes(32), NODE_A.node_id, NODE_B.node_id),
                               {"decryptionFailed"}))

    def e2e_signed_round_trip():
        # Not in the vectors: compress -> encrypt -> sign (6.13); AAD covers S, signature covers ciphertext.
        b = cw.make_bundle(NODE_A, 6, cw.BundleId(NODE_B.short_id, 5, 9).wire(), 1_523_300, 3,
                           dest_type=cw.DEST_NODE, destination=NODE_B.short_id, recipient=NODE_B.public())
        d = cw.decode_bundle(b.encode())
        expect_equal((d.signed, d.e2e, cw.verify_bundle(d, [NODE_A.public()])), (True, True, NODE_A.public()))
        ids = cw.decode_receipt_content(cw.read_content(d, NODE_B, [NODE_A.public()]))
        return expect_equal(ids, [cw.BundleId(NODE_B.short_id, 5, 9)]) and "receipt, signed by default"

    check("self-test (no vector): signed end-to-end receipt round trip", e2e_signed_round_trip)

    def forged_identity():
        # 9.1: an identity bundle from A carrying B's keys teaches nothing (the keys are not the origin's), and
        # neither does one with A's keys that B signed.
        wrong_keys = cw.make_bundle(NODE_A, cw.KIND_IDENTITY, cw.encode_identity_content(NODE_B.public(), "B"), 1_523_300, 4)
        expect_error(lambda: cw.verify_identity(wrong_keys, cw.read_content(wrong_keys)), {"invalidValue"})
        unsigned = cw.make_bundle(NODE_A, cw.KIND_IDENTITY, cw.encode_identity_content(NODE_A.public()), 1_523_300, 5, sign=False)
        expect_error(lambda: cw.verify_identity(unsigned, cw.read_content(unsigned)), {"invalidValue"})
        good = cw.make_bundle(NODE_A, cw.KIND_IDENTITY, cw.encode_identity_content(NODE_A.public(), "A", True), 1_523_300, 6)
        return expect_equal(cw.verify_identity(cw.decode_bundle(good.encode()), cw.read_content(good)),
                            (NODE_A.public(), "A", True)) and "wrong keys and unsigned refused; A's own accepted"

    check("self-test (no vector): identity bundles teach only the origin's own, signed keys (9.1)", forged_identity)
    check("spec 7.4: dictionary 1 SHA-256",
          lambda: expect_equal(hashlib.sha256(open(cw.DICTIONARY_PATHS[1], "rb").read()).hexdigest(),
                               "e0cba17a0e7714bd5c374c481c19737fbdd90b7a0f9b7195498a3dfaa0f01ab9"))
    alert = cw.decode_bundle(bytes.fromhex(load("bundles.json")[0]["bundleHex"]))
    check("spec 13.3: alert header is 13 bytes, body 64, signing input 94 bytes",
          lambda: expect_equal((len(alert.header()), len(alert.body), len(alert.signing_input())), (13, 64, 94)))

    def on_air():
        b = alert.encode()
        frags = cw.fragment_bundle(b, 64, 5, None)
        sizes = [25 + len(cw.encode_payload([f])) for f in frags]
        expect_equal([len(f.data) for f in frags], [29, 29, 29, 29, 25])
        return expect_equal((sizes, sum(sizes)), ([58, 58, 58, 58, 54], 286))

    check("spec 14: the 141-byte alert at MTU 64 -> five fragments, 286 bytes on air", on_air)
    check("spec 14: largest whole bundle at MTU 255/64, flooded and directed",
          lambda: expect_equal([max(n for n in range(1, 300) if len(cw.fragment_bundle(bytes(n), mtu, 5, nh)) == 1)
                                for mtu in (255, 64) for nh in (None, 1)], [229, 224, 38, 33]))
    check("spec 14: full announce with the vector's 14-byte name is 109 bytes on air",
          lambda: expect_equal(len(bytes.fromhex(load("packets.json")[2]["packetHex"])), 109))

    def summary_pages():
        # 10.1: at MTU 64 a page holds 9 digests, at MTU 255 57 (one final page, alone in the packet).
        fits = lambda mtu, n: 25 + len(cw.encode_payload([cw.SummaryRecord([0] * n, True)])) <= mtu  # noqa: E731
        return expect_equal([max(n for n in range(100) if fits(m, n)) for m in (64, 255)], [9, 57])

    check("spec 10.1: summary page capacity", summary_pages)
    check("spec 5.1: padding is dropped; L=0 padding ends the payload",
          lambda: expect_equal(cw.decode_payload(bytes.fromhex("080200005904" + "0b6d1e2d" + "00ffff")),
                               [cw.SummaryRecord([0x0B6D1E2D], True)]))
    check("spec 5.1: a known type with a reserved flag is returned as unknown",
          lambda: expect_equal(cw.decode_payload(bytes.fromhex("3401")), [cw.UnknownRecord(3, 4, b"\x01")]))
    check("spec 5.6: announce name longer than 32 bytes is rejected",
          lambda: expect_error(lambda: cw.decode_payload(bytes([0x44, 1]) + b"x" * 33), {"tooLarge"}))
    check("spec 5.6: announce trailing bytes without M are rejected",
          lambda: expect_error(lambda: cw.decode_payload(bytes([0x40, 1, 0])), {"trailingBytes"}))
    check("spec 7.2: a frame declaring a 2^18 window is rejected",
          lambda: expect_error(lambda: cw.zstd_decompress(bytes.fromhex("0040010000"), None), {"decompressionFailed"}))
    check("spec 7.2: bytes after the frame are rejected",
          lambda: expect_error(lambda: cw.zstd_decompress(alert.body + b"\x00", 1), {"decompressionFailed"}))

    def zip_bomb():
        # One frame, window 2^17, of RLE blocks of 128 KiB each: must stop at 65,536 bytes.
        rle = ((128 * 1024) << 3 | 1 << 1).to_bytes(3, "little") + b"A"
        last = ((128 * 1024) << 3 | 1 << 1 | 1).to_bytes(3, "little") + b"A"
        return expect_error(lambda: cw.zstd_decompress(bytes([0x00, 0x38]) + rle * 3 + last, None),
                            {"decompressionFailed"})

    check("spec 7.2: output is bounded to 65,536 bytes", zip_bomb)


def zstd_cli(args, data: bytes) -> bytes:
    """Runs the zstd CLI on data given as a file (as 7.2 requires for the window)."""
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(data)
        name = f.name
    try:
        return subprocess.run(["zstd", "-q", "-c", *args, name], capture_output=True, check=True).stdout
    finally:
        os.unlink(name)


def cofactored_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """The check 6.12 does NOT use ([8][S]B = [8]R + [8][k]A, S unchecked): only to show that the
    crafted signatures below are ones on which the two forms disagree."""
    a, r = cw.ed_decode(public_key), cw.ed_decode(signature[:32])
    if a is None or r is None:
        return False
    s_ = int.from_bytes(signature[32:], "little")
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % cw.ED_L
    lhs = cw.ed_mul(8, cw.ed_mul(s_, cw.ED_B))
    rhs = cw.ed_mul(8, cw.ed_add(r, cw.ed_mul(k, a)))
    return cw.ed_encode(lhs) == cw.ed_encode(rhs)


def openssl_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


def check_clarifications():
    """Rules of SPEC.md stated for the reference's behaviour that no vector exercises directly."""
    dict1 = cw.DICTIONARY_PATHS[1]
    text = " ".join(["water pump well committee flood road clinic bread rota east west quarter"] * 2000).encode()

    def cli_windows():
        # 7.2/12.4: input given as a FILE: window log = max(10, ceil(log2(size))), the attached
        # dictionary not counted (libzstd attaches it up to 8,192 bytes at level 19, and copies and
        # counts it above that, still within 2^17).
        got = {}
        for n in (1, 1024, 1025, 8192, 8193, 40000, 65536):
            for d in (False, True):
                frame = zstd_cli(["-19", "--no-check", "--no-content-size", "--no-dictID"] +
                                 (["-D", dict1] if d else []), text[:n])[4:]
                w = cw.zstd_frame_info(frame)["window"]
                expect_equal(w, 1 << cw.zstd_cli_window_log(n, d))
                got[(n, d)] = w.bit_length() - 1
        return "window logs " + ", ".join(f"{n}{'+dict' if d else ''}:{w}" for (n, d), w in got.items())

    if ZSTD_VERSION == "1.5.4":
        check("spec 7.2: zstd 1.5.4 CLI window from the content size, input as a file", cli_windows)

        def pipe_window():
            out = subprocess.run(["zstd", "-q", "-c", "-19", "--no-check", "--no-content-size", "--no-dictID"],
                                 input=text[:5000], capture_output=True, check=True).stdout
            wd = out[5]     # after the magic: Frame_Header_Descriptor, then Window_Descriptor
            return expect_equal(wd >> 3 > 7, True) and f"from a pipe: Window_Descriptor {wd:02x} " \
                f"(log {10 + (wd >> 3)} > 17: not allowed)"

        check("spec 7.2: the zstd CLI reading a pipe declares a window above 2^17", pipe_window)

    def other_frame_shapes():
        # 7.2 decoder rule 1: single-segment, content size, checksum and the dictionary's own id.
        content = text[:300]
        frame = zstd_cli(["-19", "-D", dict1], content)[4:]
        info = cw.zstd_frame_info(frame)
        expect_equal((info["window_descriptor"], info["content_size"], info["checksum"]), (None, 300, True))
        expect_equal(info["dictionary_id"], cw.zstd_internal_dictionary_id(1))
        expect_equal(cw.zstd_decompress(frame, 1), content)
        plain = zstd_cli(["-19"], content)[4:]
        expect_equal(cw.zstd_decompress(plain, None), content)
        return f"single-segment, content size, checksum, dictionary id {info['dictionary_id']:#x}: accepted"

    check("spec 7.2: any valid frame shape within the window limit is accepted", other_frame_shapes)

    def wrong_dictionary_id():
        frame = bytearray(zstd_cli(["-19", "-D", dict1], text[:300])[4:])
        # Frame_Header_Descriptor then (single segment: no Window_Descriptor) the 4-byte dictionary id.
        assert frame[0] & 3 == 3 and frame[0] & 0x20
        frame[1] ^= 0x01
        first = expect_error(lambda: cw.zstd_decompress(bytes(frame), 1), {"decompressionFailed"})
        with_id = zstd_cli(["-19", "-D", dict1], text[:300])[4:]
        second = expect_error(lambda: cw.zstd_decompress(with_id, None), {"decompressionFailed"})
        return f"{first}; {second}"

    check("spec 7.2: a frame naming another dictionary id (or any, without a dictionary) is rejected",
          wrong_dictionary_id)

    # 6.12: cofactorless Ed25519 (S < L; encode([S]B - [k]A) == R).
    message = b"courier/v1/bundle" + b"crafted"
    h = hashlib.sha512(NODE_A.signing_seed).digest()
    a_scalar = int.from_bytes(h[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    public = NODE_A.signing_public
    order2 = cw.ed_decode((cw.ED_P - 1).to_bytes(32, "little"))          # (0, -1), order 2

    def small_order_r():
        r = int.from_bytes(hashlib.sha512(h[32:] + message).digest(), "little") % cw.ED_L
        big_r = cw.ed_encode(cw.ed_add(cw.ed_mul(r, cw.ED_B), order2))     # R + T, T of order 2
        k = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % cw.ED_L
        sig = big_r + ((r + k * a_scalar) % cw.ED_L).to_bytes(32, "little")
        expect_equal(cofactored_verify(public, sig, message), True)
        expect_equal(cw.ed25519_verify(public, sig, message), False)
        expect_equal(openssl_verify(public, sig, message), False)
        return "R with an order-2 component: cofactored accepts, cofactorless (and OpenSSL) rejects"

    check("spec 6.12: a crafted signature the cofactored equation accepts is rejected", small_order_r)

    def s_not_reduced():
        sig = NODE_A.sign(message)
        big_s = (int.from_bytes(sig[32:], "little") + cw.ED_L).to_bytes(32, "little")
        expect_equal(cw.ed25519_verify(public, sig, message), True)
        expect_equal(cofactored_verify(public, sig[:32] + big_s, message), True)
        expect_equal(cw.ed25519_verify(public, sig[:32] + big_s, message), False)
        expect_equal(openssl_verify(public, sig[:32] + big_s, message), False)
        return "S + L: rejected (S must be < L)"

    check("spec 6.12: a signature with S >= L is rejected", s_not_reduced)
    def not_a_point():
        bad = next(bytes([y]) + bytes(31) for y in range(2, 256) if cw.ed_decode(bytes([y]) + bytes(31)) is None)
        expect_equal(cw.ed25519_verify(bad, NODE_A.sign(message), message), False)
        return f"A = {bad[:1].hex()}00..00 (y = {bad[0]} has no x): rejected"

    check("spec 6.12: a public key that is not a curve point is rejected", not_a_point)

    def agreement_seed_clamped():
        # 12.2: agreementSeed is the raw X25519 scalar (RFC 7748), clamped when used.
        raw = bytes(range(0x20, 0x40))
        clamped = bytearray(raw)
        clamped[0] &= 248
        clamped[31] = clamped[31] & 127 | 64
        expect_equal(raw != bytes(clamped), True)
        pub = X25519PrivateKey.from_private_bytes(bytes(clamped)).public_key().public_bytes(Encoding.Raw,
                                                                                            PublicFormat.Raw)
        return expect_equal(pub, NODE_A.agreement_public) and "the vector's seed is not clamped; clamping it " \
            "gives the same public key"

    check("spec 12.2: agreementSeed is the raw X25519 scalar, clamped when used", agreement_seed_clamped)

    def content_limit_at_read():
        # 6.1/7.3: the 65,536-byte limit is applied when the content is read, not by the decoder.
        b = cw.Bundle(kind=5, origin=NODE_A.short_id, created=1, sequence=1, lifetime=60, body=bytes(65_537))
        d = cw.decode_bundle(b.encode())
        expect_equal(len(d.body), 65_537)
        expect_error(lambda: cw.read_content(d), {"tooLarge"})
        return "a 65,537-byte raw body decodes; reading it fails"

    check("spec 6.1: the content limit is checked when the content is read", content_limit_at_read)

    def e2e_group():
        b = cw.Bundle(kind=3, origin=NODE_A.short_id, created=1, sequence=2, lifetime=60, dest_type=cw.DEST_GROUP,
                      destination=0xEDD8, e2e=True, body=bytes(20))
        d = cw.decode_bundle(b.encode())
        expect_equal((d.e2e, d.dest_type), (True, cw.DEST_GROUP))
        return expect_error(lambda: cw.read_content(d, NODE_B, [NODE_A.public()]), {"decryptionFailed"})

    check("spec 3.5: E = 1 to a group decodes (stored, forwarded); reading the content fails", e2e_group)
    check("spec 12.2: invalid 'compression 1 with an empty body' passes the bundle decoder alone",
          lambda: expect_equal(cw.decode_bundle(bytes.fromhex("809020312363173d610001")).body, b"")
          and expect_error(lambda: cw.read_content(cw.decode_bundle(bytes.fromhex("809020312363173d610001")))))

    def header_order():
        # Version before length ("20" alone), reserved bits before length ("11" alone); an announce-
        # form header needs 13 bytes (10 given).
        kinds = []
        for x in ("20", "11", "10aabb", "18203123630000000301"):
            try:
                cw.decode_packet_header(bytes.fromhex(x))
            except cw.WireError as e:
                kinds.append(e.kind)
        expect_equal(kinds, ["unsupportedVersion", "unsupportedFeature", "truncated", "truncated"])
        nine = bytes.fromhex("102031236300000001")
        expect_equal(cw.decode_packet_header(nine).counter, 1)       # a whole header, no tag: decodes
        expect_error(lambda: cw.open_packet(nine + bytes(15), NETWORK_KEY, {}), {"truncated"})
        return "version, reserved bits, then length (9 or 13); the tag length when opening"

    check("spec 4.7: packet header decoder order", header_order)

    def extensions_rules():
        dup = [(2, b"a"), (2, b"a"), (1, b"")]
        b = cw.make_bundle(NODE_A, 5, b"hi", 10, 1, extensions=dup, sign=False)
        expect_equal(cw.decode_bundle(b.encode()).extensions, dup)
        sixteen = cw.Bundle(kind=5, origin=1, created=1, sequence=1, lifetime=1, extensions=[(4, b"")] * 16)
        expect_equal(len(cw.decode_bundle(sixteen.encode()).extensions), 16)
        seventeen = cw.Bundle(kind=5, origin=1, created=1, sequence=1, lifetime=1, extensions=[(4, b"")] * 17)
        return expect_error(lambda: cw.decode_bundle(seventeen.encode()), {"invalidValue"})

    check("spec 6.6: duplicates kept in order; 16 extensions accepted, 17 rejected", extensions_rules)

    def ack_bits_beyond_count():
        entry = cw.AckEntry(7, 1, bytes([0b1111_0001]))     # marks 0, 2, 6, 7, 8, 9
        expect_equal(cw.ack_entry_received(entry), {0, 2, 6, 7, 8, 9})
        expect_equal(cw.ack_entry_received(entry, 7), {0, 2, 6})
        return expect_equal(cw.ack_missing(entry, 7), [1, 3, 4, 5]) and "count 7: bits for 7, 8, 9 ignored"

    check("spec 5.5: ack bitmap bits at or above the fragment count are ignored", ack_bits_beyond_count)

    def announce_names():
        ok = cw.decode_payload(bytes([0x44, 0]) + "سەرگەڵوو".encode())
        for bad in ("eda080", "c0af", "f4908080", "ff"):       # surrogate, overlong, > U+10FFFF, invalid byte
            expect_error(lambda: cw.decode_payload(bytes([0x44, 0]) + bytes.fromhex(bad)), {"invalidValue"})
        return f"{ok[0].name!r} accepted; surrogate, overlong, above U+10FFFF and ff rejected"

    check("spec 5.6: announce names must be well-formed UTF-8 (RFC 3629)", announce_names)

    def empty_receipt():
        b = cw.make_bundle(NODE_A, 6, b"", 10, 2, dest_type=cw.DEST_NODE, destination=NODE_B.short_id)
        d = cw.decode_bundle(b.encode())
        return expect_equal(cw.decode_receipt_content(cw.read_content(d)), []) and "decodes, carries no ids"

    check("spec 6.8: an empty receipt decodes and carries nothing", empty_receipt)

    def unknown_failure_reason():
        bid = cw.BundleId(0xAABBCCDD, 1523041, 0)
        return expect_equal(cw.decode_failure_content(bytes([9]) + bid.wire()), [(9, bid)]) and "reason 9 kept, shown as a number"

    check("spec 6.8: a failure notice with a reason this node does not know is not malformed", unknown_failure_reason)

    def id_text_forms():
        expect_equal(cw.BundleId.parse("C2F4D854.16777215.4294967295"), cw.BundleId(0xC2F4D854, 16777215, 4294967295))
        expect_equal(cw.BundleId.parse("c2F4d854.0.0").text(), "c2f4d854.0.0")
        for bad in ("2031236.1.0", "020312363.1.0", "20312363.+1.0", "20312363. 1.0", "20312363.1.-0",
                    "20312363.1.1_0", "20312363.1.0 ", "0x203123.1.0", "20312363.1", "20312363.1.\u0661"):
            expect_error(lambda: cw.BundleId.parse(bad), {"invalidValue"})
        return "upper and lower case accepted; signs, spaces, non-ASCII digits, wrong lengths rejected"

    check("spec 6.11: bundle id text form", id_text_forms)

    def packer_overhead():
        one_key = cw.AnnounceRecord(1, NODE_A.signing_public)
        other = cw.AnnounceRecord(1, None, NODE_A.agreement_public)
        expect_equal(29 + len(cw.encode_payload([one_key])), 63)
        expect_equal([len(p) for p in cw.pack_records([one_key, other], 64, announce_form=True)], [1, 1])
        small = [cw.SummaryRecord([1, 2, 3, 4, 5, 6], True), cw.SummaryRecord([7], True)]
        # Together the two records are 1 + 1 + 24 + 1 + 4 = 31 bytes: 25 + 31 = 56 fits MTU 59,
        # 29 + 31 = 60 does not.
        expect_equal([len(p) for p in cw.pack_records(small, 59)], [2])
        return expect_equal([len(p) for p in cw.pack_records(small, 59, announce_form=True)], [1, 1]) and \
            "29 bytes in announce form, 25 otherwise"

    check("spec 5.9: packer overhead", packer_overhead)


# ---------------------------------------------------------------------------------------------
# archives.json (section 17)
# ---------------------------------------------------------------------------------------------


def check_archives():
    import hmac
    import hashlib
    for v in load("archives.json"):
        nk = bytes.fromhex(v["networkKey"])
        p = f"archive {v['name']}"
        key = cw.derive(nk, b"archive")
        check(f"{p}: key", lambda: expect_equal(key.hex(), v["archiveKey"]))
        body = b"CBA1" + bytes([0]) + cw.u(v["created"], 4) + bytes.fromhex(v["writer"])
        body += cw.encode_varint(len(v["bundlesHex"]))
        for h in v["bundlesHex"]:
            b = bytes.fromhex(h)
            body += cw.encode_varint(len(b)) + b
        tag = hmac.new(key, body, hashlib.sha256).digest()
        check(f"{p}: encoding", lambda: expect_equal((body + tag).hex(), v["archiveHex"]))
        for h in v["bundlesHex"]:
            check(f"{p}: holds a bundle that decodes", lambda: cw.decode_bundle(bytes.fromhex(h)))


# ---------------------------------------------------------------------------------------------
# announces.json (section 9.2), framing.json and kiss.json (section 18), codes.json (section 19)
# ---------------------------------------------------------------------------------------------


def check_announces():
    for v in load("announces.json"):
        p = f"announces '{v['name']}'"
        signing, agreement = bytes.fromhex(v["signingKey"]), bytes.fromhex(v["agreementKey"])
        parts = cw.announce_parts(v["capabilities"], signing, agreement, v.get("nameUtf8"), v["mtu"])
        check(f"{p}: parts -> recordsHex",
              lambda: expect_equal([cw.encode_payload([r]).hex() for r in parts], v["recordsHex"]))

        def learned():
            got = {"signing_key": None, "agreement_key": None, "name": None}
            for h in v["recordsHex"]:
                if 29 + len(h) // 2 > v["mtu"]:
                    raise AssertionError(f"a part of {29 + len(h) // 2} bytes exceeds MTU {v['mtu']}")
                (rec,) = cw.decode_payload(bytes.fromhex(h))
                expect_equal(rec.capabilities, v["capabilities"])
                for k in got:
                    if getattr(rec, k) is not None:
                        got[k] = getattr(rec, k)
            expect_equal((got["signing_key"], got["agreement_key"]), (signing, agreement))
            name = v.get("nameUtf8")
            expect_equal(got["name"], None if name is None else cw.cut_name(name))
            return f"{len(v['recordsHex'])} part(s); keys last" if len(v["recordsHex"]) > 1 else "whole"

        check(f"{p}: each part fits and decodes; together they teach both keys and the name", learned)


def check_framing():
    f = load("framing.json")
    for v in f["crc32c"]:
        check(f"framing: CRC-32C of {v['inputHex'][:20] or 'nothing'}",
              lambda: expect_equal(f"{cw.crc32c(bytes.fromhex(v['inputHex'])):08x}", v["crc"]))
    for v in f["frames"]:
        p = f"framing '{v['name']}'"
        packet, frame = bytes.fromhex(v["packetHex"]), bytes.fromhex(v["frameHex"])
        check(f"{p}: packet -> frame", lambda: expect_equal(cw.serial_frame(packet).hex(), v["frameHex"]))
        check(f"{p}: frame -> packet", lambda: expect_equal(cw.SerialReceiver().feed(frame), [packet]))

        def bytewise():
            r = cw.SerialReceiver()
            return expect_equal([p for b in frame for p in r.feed(bytes([b]))], [packet])

        check(f"{p}: frame -> packet, one byte at a time", bytewise)
        if len(packet) <= 249:
            check(f"{p}: P + 7 bytes", lambda: expect_equal(len(frame), len(packet) + 7))
    for v in f["streams"]:
        def stream():
            r = cw.SerialReceiver()
            expect_equal([p.hex() for p in r.feed(bytes.fromhex(v["streamHex"]))], v["packetsHex"])
            return expect_equal(r.dropped, v["dropped"]) and f"{len(v['packetsHex'])} packet(s), {v['dropped']} dropped"

        check(f"framing stream '{v['name']}'", stream)
    for v in f["tcp"]:
        packet = bytes.fromhex(v["packetHex"])
        check(f"tcp '{v['name']}': both directions", lambda: expect_equal(cw.tcp_frame(packet).hex(), v["frameHex"])
              and expect_equal(cw.tcp_unframe(bytes.fromhex(v["frameHex"])), [packet]))


def check_kiss():
    f = load("kiss.json")
    for v in f["frames"]:
        p = f"kiss '{v['name']}'"
        packet = bytes.fromhex(v["packetHex"])
        check(f"{p}: packet -> frame", lambda: expect_equal(
            cw.kiss_data_frame(packet, v.get("port", 0), v.get("callsign")).hex(), v["frameHex"]))
        check(f"{p}: frame -> packet", lambda: expect_equal(
            cw.KISSReceiver(v.get("port", 0), v.get("callsign")).feed(bytes.fromhex(v["frameHex"])), [packet]))
    for v in f["parameters"]:
        check(f"kiss parameters '{v['name']}'", lambda: expect_equal(
            [x.hex() for x in cw.kiss_parameter_frames(v)], v["framesHex"]))
    for v in f["streams"]:
        def stream():
            r = cw.KISSReceiver(v.get("port", 0), v.get("callsign"))
            expect_equal([p.hex() for p in r.feed(bytes.fromhex(v["streamHex"]))], v["packetsHex"])
            return expect_equal(r.dropped, v["dropped"]) and f"{len(v['packetsHex'])} packet(s), {v['dropped']} skipped"

        check(f"kiss stream '{v['name']}'", stream)
    for v in f["rnode"]:
        packet = bytes.fromhex(v["packetHex"])
        check(f"rnode '{v['name']}'", lambda: expect_equal(cw.kiss_frame(0x00, packet).hex(), v["frameHex"])
              and expect_equal(cw.KISSReceiver(0).feed(bytes.fromhex(v["frameHex"])), [packet]))


def check_codes():
    f = load("codes.json")
    for v in f["joinCodes"]:
        key = bytes.fromhex(v["networkKey"])
        p = f"join code ({'open' if v['open'] else 'sealed'})"
        check(f"{p}: encode", lambda: expect_equal(cw.join_code(key, v["open"]), v["code"]))
        check(f"{p}: decode", lambda: expect_equal(cw.read_join_code(v["code"]), (key, v["open"])))
        spoken = " ".join(v["code"][i:i + 5] for i in range(0, len(v["code"]), 5)).upper()
        check(f"{p}: decode when read out (upper case, groups of 5)",
              lambda: expect_equal(cw.read_join_code(spoken), (key, v["open"])))
    for v in f["identityCodes"]:
        keys = (bytes.fromhex(v["signingPublic"]), bytes.fromhex(v["agreementPublic"]))
        check(f"identity code {v['name']}: encode", lambda: expect_equal(cw.identity_code(*keys), v["code"]))
        check(f"identity code {v['name']}: decode", lambda: expect_equal(cw.read_identity_code(v["code"]), keys))
    for v in f["invalid"]:
        def refused():
            read = cw.read_join_code if v["kind"] == "join" else cw.read_identity_code
            try:
                read(v["code"])
            except cw.CodeError as e:
                return str(e)
            raise AssertionError("accepted")

        check(f"{v['kind']} code refused: {v['why']}", refused)


# ---------------------------------------------------------------------------------------------
# pacts.json (section 6.15)

def check_pacts():
    f = load("pacts.json")
    for v in f["records"]:
        p = f"pact record '{v['name']}'"
        want = {k: x for k, x in v.items() if k not in ("name", "recordHex")}
        check(f"{p}: decodes to its fields", lambda: expect_equal(cw.decode_pact_record(bytes.fromhex(v["recordHex"])), want))
        check(f"{p}: encodes to recordHex", lambda: expect_equal(cw.encode_pact_record(want).hex(), v["recordHex"]))
    for v in f["invalid"]:
        def refused():
            try:
                cw.decode_pact_record(bytes.fromhex(v["hex"]))
            except cw.WireError as e:
                return str(e)
            raise AssertionError("decoded")

        check(f"pact record refused: {v['name']} ({v['error']})", refused)
    for v in f["bundles"]:
        p = f"pact bundle '{v['name'][:40]}...'"
        b = cw.decode_bundle(bytes.fromhex(v["bundleHex"]))

        def carried():
            exts = [value for t, value in (b.extensions or []) if t == cw.PACT_EXTENSION_TYPE]
            expect_equal(len(exts), 1)
            rec = cw.decode_pact_record(exts[0])
            expect_equal(rec["type"], "pledge")
            expect_equal(rec["request"], b.reference.text())
            expect_equal(cw.verify_bundle(b, [cw.Identity(bytes(range(0x00, 0x20)), bytes(range(0x20, 0x40))).public(),
                                              NODE_B.public()]), NODE_B.public())
            expect_equal(cw.read_content(b).decode("utf-8"), v["contentUtf8"])
            return "a signed offer to everyone, its reference the request the record names"

        check(f"{p}: carries one pact record that decodes, signed by its origin", carried)
        check(f"{p}: re-encodes unchanged (an older node forwards it as it is)", lambda: expect_equal(b.encode().hex(), v["bundleHex"]))


def check_dictionaries():
    f = load("dictionaries.json")
    dictionary = bytes.fromhex(f["dictionaryHex"])
    b = cw.decode_bundle(bytes.fromhex(f["dictionaryBundleHex"]))

    def taken():
        dict_id, version, got = cw.read_dictionary_bundle(b, [NODE_A.public()])
        expect_equal((dict_id, version, got.hex()), (f["id"], f["version"], f["dictionaryHex"]))
        expect_equal(b.dest_type, cw.DEST_EVERYONE)
        return f"dictionary {dict_id} version {version}, {len(got)} B, signed by A, to everyone"

    check("dictionary bundle: signed by its origin, label (extension 5) and zstd dictionary read", taken)
    check("dictionary bundle: label encodes as in the vector",
          lambda: expect_equal(cw.encode_dictionary_label(f["id"], f["version"]).hex(), f["labelHex"]))
    check("dictionary bundle: its one extension is type 5, odd (critical: an older node does not deliver it)",
          lambda: expect_equal(([t for t, _ in b.extensions], cw.EXT_DICTIONARY % 2), ([5], 1)))
    check("dictionary bundle: re-encodes unchanged", lambda: expect_equal(b.encode().hex(), f["dictionaryBundleHex"]))
    check("dictionary fingerprint: SHA-256, first two bytes",
          lambda: expect_equal("%04x" % cw.dictionary_fingerprint(dictionary), f["fingerprint"]))
    t = cw.decode_bundle(bytes.fromhex(f["textBundleHex"]))
    check("text compressed with the federation dictionary: unreadable before it is held",
          lambda: expect_error(lambda: cw.read_content(t), ["unknownDictionary"]))

    def readable():
        cw.hold_dictionary(f["id"], dictionary)
        expect_equal(cw.compression_name(t), f"zstd-dict-{f['id']}")
        expect_equal(cw.read_content(t).decode("utf-8"), f["textUtf8"])
        return f"{len(t.body)} B of body for {len(f['textUtf8'].encode())} B of text"

    check("text compressed with the federation dictionary: read once it is held", readable)
    bare = cw.decode_bundle(bytes.fromhex(f["bareTextBundleHex"]))

    def bare_read():
        expect_equal(cw.compression_name(bare), f"zstd-block-{f['id']}")
        expect_equal(cw.read_content(bare).decode("utf-8"), f["textUtf8"])
        # The block is the frame's, less its 2-byte frame header and 3-byte block header.
        expect_equal(bare.body, t.body[5:])
        expect_equal(bare.encode().hex(), f["bareTextBundleHex"])
        return f"{len(bare.body)} B of body (the frame's {len(t.body)} less 5), 1 header byte more; frame rebuilt: 00 38 + block header"

    check("bare block form (7.2): 00 then the id; read by rebuilding its frame; re-encodes unchanged", bare_read)
    def flag_b():
        rec = cw.decode_payload(bytes([0x62, f["id"], 0xab, 0xcd]))[0]
        expect_equal((rec.request, rec.reads_bare, rec.entries), (False, True, [(f["id"], 0xabcd)]))
        expect_equal(cw.decode_payload(bytes([0x63, f["id"], 0, 0]))[0].reads_bare, False)
        return "62 07 ab cd: holds 7 and reads bare blocks; B ignored with Q"

    check("dictionaries record flag B (5.10): the sender reads bare blocks", flag_b)
    check("bare block form: dictionary byte 00 then 00 is rejected by the bundle decoder",
          lambda: expect_error(lambda: cw.decode_bundle(bytes.fromhex(f["bareZeroIdBundleHex"])), ["invalidValue"]))
    check("bare block form: a damaged block decodes as a bundle, fails when read",
          lambda: expect_error(lambda: cw.read_content(cw.decode_bundle(bytes.fromhex(f["bareDamagedBundleHex"]))),
                               ["decompressionFailed"]))
    for v in f["records"]:
        p = f"dictionaries record '{v['name']}'"
        want = record_from_json(v["record"])
        check(f"{p}: decodes", lambda: expect_equal(cw.decode_payload(bytes.fromhex(v["payloadHex"])), [want]))
        check(f"{p}: encodes", lambda: expect_equal(cw.encode_payload([want]).hex(), v["payloadHex"]))
    check("dictionaries record: length not a multiple of 3 is refused",
          lambda: expect_error(lambda: cw.decode_payload(bytes.fromhex("60" + "0701")), ["invalidValue"]))
    check("dictionaries record: an empty request is refused",
          lambda: expect_error(lambda: cw.decode_payload(bytes.fromhex("61")), ["truncated"]))
    check("dictionaries record: a reserved flag makes it unknown (a newer sender)",
          lambda: expect_equal(type(cw.decode_payload(bytes.fromhex("64" + "07abcd"))[0]).__name__, "UnknownRecord"))


# ---------------------------------------------------------------------------------------------
# receipts.json (section 6.16)

def check_receipts():
    f = load("receipts.json")
    keys = load("keys.json")["nodes"]
    origin = identity(keys[0]["identity"])
    holders = {n["shortId"]: identity(n["identity"]) for n in keys[1:] + f["nodes"]}
    for n in f["nodes"]:
        check(f"receipt node {n['name']}: short id from its keys",
              lambda: expect_equal(f"{identity(n['identity']).short_id:08x}", n["shortId"]))

    def fields(rec):
        return {"origin": f"{rec.origin:08x}", "hops": rec.hops,
                "groups": [{"created": c, "sequence": q, "parts": [f"{h:08x}" for h, _ in parts],
                            "partHops": rec.part_hops[i] if rec.part_hops is not None else None}
                           for i, (c, q, parts) in enumerate(rec.groups)]}

    def want_fields(v):
        return {"origin": v["origin"], "hops": v["hops"],
                "groups": [{"created": g["created"], "sequence": g["sequence"], "parts": [p["holder"] for p in g["parts"]],
                            "partHops": [p["hops"] for p in g["parts"]] if v.get("hopCounts") else None}
                           for g in v["groups"]]}

    def tags_check(v, rec):
        results = []
        for created, sequence, parts in rec.groups:
            for holder, tag in parts:
                h = holders[f"{holder:08x}"]
                k_holder = cw.receipt_key(h.agreement_private, origin.agreement_public, h.node_id, origin.node_id)
                k_origin = cw.receipt_key(origin.agreement_private, h.agreement_public, h.node_id, origin.node_id)
                expect_equal(k_holder, k_origin)
                results.append(cw.receipt_tag(k_origin, rec.origin, created, sequence, holder) == tag)
        return results

    for v in f["records"]:
        p = f"receipt parts '{v['name'][:50]}'"
        rec = cw.decode_receipt_parts(bytes.fromhex(v["recordHex"]), bool(v.get("hopCounts")))
        check(f"{p}: decodes to its fields", lambda: expect_equal(fields(rec), want_fields(v)))
        check(f"{p}: encodes to recordHex", lambda: expect_equal(cw.encode_receipt_parts(rec).hex(), v["recordHex"]))
        check(f"{p}: as a payload (record type 7)", lambda: expect_equal(
            cw.encode_payload(cw.decode_payload(bytes.fromhex(v["payloadHex"]))).hex(), v["payloadHex"]))
        check(f"{p}: keys as listed (holder and origin agree)", lambda: expect_equal(
            [cw.receipt_key(holders[g_p["holder"]].agreement_private, origin.agreement_public,
                            holders[g_p["holder"]].node_id, origin.node_id).hex() for g in v["groups"] for g_p in g["parts"]],
            [g_p["key"] for g in v["groups"] for g_p in g["parts"]]))
        check(f"{p}: every tag is its holder's", lambda: expect_equal(all(tags_check(v, rec)), True))
    for v in f["forged"]:
        rec = cw.decode_receipt_parts(bytes.fromhex(v["recordHex"]))
        check(f"forged receipt part '{v['name'][:50]}': its tag does not verify", lambda: expect_equal(tags_check(v, rec), [False]))
    for v in f["invalid"]:
        def refused():
            try:
                cw.decode_receipt_parts(bytes.fromhex(v["hex"]))
            except cw.WireError as e:
                expect_equal(e.kind, v["error"])
                return str(e)
            raise AssertionError("decoded")

        check(f"receipt parts refused: {v['name']} ({v['error']})", refused)


# ---------------------------------------------------------------------------------------------
# neighbours.json (section 5.13)
# ---------------------------------------------------------------------------------------------

def check_neighbours():
    f = load("neighbours.json")
    for v in f["records"]:
        p = f"neighbour list '{v['name'][:50]}'"
        rec = cw.decode_neighbours(bytes.fromhex(v["recordHex"]), "relays" in v)
        check(f"{p}: decodes to its ids", lambda: expect_equal([f"{i:08x}" for i in rec.ids], v["ids"]))
        check(f"{p}: decodes to its relays", lambda: expect_equal(
            None if rec.relays is None else [f"{i:08x}" for i in rec.relays], v.get("relays")))
        check(f"{p}: encodes to recordHex", lambda: expect_equal(cw.encode_neighbours(rec).hex(), v["recordHex"]))

        def payload():
            records = cw.decode_payload(bytes.fromhex(v["payloadHex"]))
            expect_equal([type(r).__name__ for r in records], ["AnnounceRecord", "NeighbourListRecord"])
            expect_equal((records[1].ids, records[1].relays), (rec.ids, rec.relays))
            expect_equal(cw.encode_payload(records).hex(), v["payloadHex"])
        check(f"{p}: after an announce in one payload (record type 9)", payload)
    for v in f["invalid"]:
        def refused():
            try:
                cw.decode_neighbours(bytes.fromhex(v["hex"]), bool(v.get("relaysFlag")))
            except cw.WireError as e:
                expect_equal(e.kind, v["error"])
                return str(e)
            raise AssertionError("decoded")

        check(f"neighbour list refused: {v['name']} ({v['error']})", refused)


# ---------------------------------------------------------------------------------------------
# budgets.json (section 5.14)
# ---------------------------------------------------------------------------------------------

def check_budgets():
    f = load("budgets.json")
    for v in f["records"]:
        p = f"copy budgets '{v['name'][:50]}'"
        rec = cw.decode_copy_budgets(bytes.fromhex(v["recordHex"]))
        check(f"{p}: decodes to its entries", lambda: expect_equal([list(e) for e in rec.entries], v["entries"]))
        check(f"{p}: encodes to recordHex", lambda: expect_equal(cw.encode_copy_budgets(rec).hex(), v["recordHex"]))

        def payload():
            records = cw.decode_payload(bytes.fromhex(v["payloadHex"]))
            expect_equal([type(r).__name__ for r in records], ["CopyBudgetsRecord", "FragmentRecord"])
            expect_equal(records[0].entries, rec.entries)
            expect_equal(records[1].transfer, rec.entries[0][0])
            expect_equal(cw.encode_payload(records).hex(), v["payloadHex"])
        check(f"{p}: beside the fragment it is for in one payload (record type 10)", payload)
    for v in f["invalid"]:
        def refused():
            try:
                cw.decode_copy_budgets(bytes.fromhex(v["hex"]))
            except cw.WireError as e:
                expect_equal(e.kind, v["error"])
                return str(e)
            raise AssertionError("decoded")

        check(f"copy budgets refused: {v['name']} ({v['error']})", refused)


def main() -> int:
    print(f"Courier vectors in {VECTORS}; zstd CLI {ZSTD_VERSION}")
    if ZSTD_VERSION == "1.5.4":
        print("NOTE  bundle bodies are compressed with the zstd 1.5.4 CLI (input given as a file so the window is "
              "sized to it; magic stripped); they are compared byte for byte")
    for section in (check_keys, check_varints, check_bundles, check_packets, check_fragments, check_invalid,
                    check_spec_examples, check_clarifications, check_archives, check_announces, check_framing,
                    check_kiss, check_codes, check_pacts, check_dictionaries, check_receipts, check_neighbours,
                    check_budgets):
        try:
            section()
        except Exception as e:  # noqa: BLE001  (a crash in a section is a failure, not an abort)
            check(f"{section.__name__} ran to completion", lambda: (_ for _ in ()).throw(e))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
