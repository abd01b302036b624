import CourierMedium
import enum CourierStore.StoreError
import struct CourierStore.StoredDictionary
import struct CourierStore.WaitingBundle
import CourierWire
import Foundation

/// Federation dictionaries (SPEC 5.10, 7.6): dictionary bundles taken in by every node they pass, what each neighbour
/// holds (record type 6, sent with every announce and whenever what we hold changes), the choice of a dictionary for
/// a bundle made here, and bundles kept until the dictionary they name arrives (asked for from the neighbours).
struct DictionaryState {
    /// Links whose neighbours should hear what we hold, at the next packet.
    var holdingsDue: Set<String> = []
    /// Ids to ask the neighbours on each link for.
    var requestsDue: [String: Set<UInt8>] = [:]
    /// Dictionaries bundles kept here wait for, and when we last asked for each.
    var wanted: [UInt8: Double] = [:]
    /// A dictionary arrived since the last tick: bundles kept for it are read then.
    var arrived = false
    /// When we last answered a request for a dictionary on a link (so copies of one request send it once).
    var answered: [String: Double] = [:]
}

extension Node {
    /// Asking again for a dictionary still wanted, at most this often (seconds).
    static let dictionaryAskInterval = 60.0
    /// Answering requests for the same dictionary on the same link at most this often (seconds): one transfer
    /// serves every neighbour that asked.
    static let dictionaryAnswerInterval = 30.0

    /// At start: the dictionaries the store holds go on the compressor's shelf, and bundles kept for one we lack are
    /// wanted. A dictionary that fails its check (a damaged store) is reported and left off.
    func shelveDictionaries(now: Double) {
        guard let held = self.storing("read the federation dictionaries", { try self.store.dictionaries() }) else { return }
        for d in held {
            do { try self.compressor.shelf.put(id: d.id, bytes: d.bytes) } catch {
                self.reject("federation dictionary \(d.id) in the store is damaged, not used: \(error)")
            }
        }
        if let kept = self.storing("read the bundles kept unread", { try self.store.waiting(origin: nil) }) {
            for w in kept {
                // One that does not decode is reported and dropped by `readWaiting`.
                guard case .success(let b) = Result(catching: { () throws(WireError) in try CourierBundle(decoding: w.data) }),
                      let id = b.compression.dictionary,
                      !self.compressor.shelf.holds(id), id != CompressionDictionary.courierDefault.id else { continue }
                self.dictionaryState.wanted[id] = -1e9
            }
        }
    }

    /// A dictionary bundle (kind 9) this node takes in: checked (signed by its origin, a valid label and dictionary),
    /// kept (the newest `Store.dictionariesKept`) and put on the shelf; neighbours hear that we hold it. Returns why it
    /// is refused.
    func takeDictionary(_ b: CourierBundle, proof: OriginProof, now: Double) -> String? {
        let d: StoredDictionary
        switch DictionaryIntake.check(b, proof: proof, compressor: self.compressor, now: now) {
        case .failure(let refusal): return refusal.why
        case .success(let checked): d = checked
        }
        guard let held = self.storing("read the federation dictionaries", { try self.store.dictionaries() }) else { return nil }
        guard DictionaryIntake.replaces(d, of: b, held: held) else { return nil }
        let bytes = d.bytes
        guard let dropped = self.storing("keep a federation dictionary", { try self.store.saveDictionary(d, now: Int64(now)) }) else { return nil }
        for x in dropped { self.compressor.shelf.remove(id: x.id) }
        do { try self.compressor.shelf.put(id: d.id, bytes: bytes) } catch { return "dictionary bundle \(b.id): \(error)" }
        let what = "dictionary \(d.id) version \(d.version) from \(b.origin) received and kept (\(bytes.count) B)"
        _ = self.storing("record a dictionary in the change feed") { try self.store.dictionaryEvent(what, bundle: b.id, now: Int64(now)) }
        self.emit(.event(.dictionary(what)))
        self.dictionaryState.wanted[d.id] = nil
        self.dictionaryState.arrived = true
        self.dictionaryState.holdingsDue.formUnion(self.links.keys)
        return nil
    }

    /// A dictionary this node published (`relay dict publish` stored its bundle): neighbours hear that we hold it.
    func adoptedDictionary(_ b: CourierBundle) {
        guard b.kind == .dictionary else { return }
        let label: DictionaryLabel
        do { label = try DictionaryLabel.of(b) } catch {
            self.reject("our own dictionary bundle \(b.id): \(error)")
            return
        }
        if !self.compressor.shelf.holds(label.id),
           let held = self.storing("read the federation dictionaries", { try self.store.dictionaries() }),
           let d = held.first(where: { $0.id == label.id }) {
            do { try self.compressor.shelf.put(id: d.id, bytes: d.bytes) } catch {
                self.reject("federation dictionary \(d.id) in the store is damaged, not used: \(error)")
                return
            }
        }
        self.dictionaryState.holdingsDue.formUnion(self.links.keys)
    }

    /// A neighbour's record type 6: what it holds (remembered, here and in the store for `relay send`), or what it
    /// asks for (its dictionary bundle goes to everyone on that link, if we hold it).
    func handleDictionaries(_ r: DictionariesRecord, from: NodeID, link: String, now: Double) {
        if !r.isRequest {
            _ = self.storing("remember what a neighbour holds") { try self.store.setDictionaryHolder(from.short, holds: r.entries + (r.readsBare ? [.readsBareMark] : []), now: Int64(now)) }
            // It holds one we wait for: ask it.
            for e in r.entries where self.dictionaryState.wanted[e.id] != nil && !self.compressor.shelf.holds(e.id) {
                self.dictionaryState.requestsDue[link, default: []].insert(e.id)
            }
            return
        }
        guard let held = self.storing("read the federation dictionaries", { try self.store.dictionaries() }) else { return }
        for e in r.entries {
            guard let d = held.first(where: { $0.id == e.id && (e.fingerprint == 0 || $0.fingerprint == e.fingerprint) }),
                  let data = d.bundle else { continue }
            let key = "\(link) \(d.id)"
            if now - (self.dictionaryState.answered[key] ?? -1e9) < Self.dictionaryAnswerInterval { continue }
            self.dictionaryState.answered[key] = now
            let b: CourierBundle
            do { b = try CourierBundle(decoding: data) } catch {
                self.reject("dictionary \(d.id) asked for by \(from.short): its bundle in the store is damaged: \(error)")
                continue
            }
            guard let found = self.storing("read a dictionary bundle", { try self.store.bundle(b.id) }) else { continue }
            guard let q = found else {
                self.reject("dictionary \(d.id) asked for by \(from.short): its bundle \(b.id) is no longer held here (its lifetime passed); not sent")
                continue
            }
            self.emit(.event(.dictionary("dictionary \(d.id) asked for by \(from.short) on \(link): sending its bundle \(b.id)")))
            self.startTransfer(q, link: link, target: nil, custody: false, now: now)
        }
    }

    /// A bundle this node cannot read for want of the dictionary it names: kept (the change feed and `relay status`
    /// show it, the log says so) until the dictionary arrives; the neighbours are asked for it.
    func keepForDictionary(_ b: CourierBundle, id: UInt8, source: String?, now: Double) -> Acceptance {
        let why = "compressed with dictionary \(id), which this relay lacks: kept until it arrives (asked the neighbours for it)"
        return self.keepWaiting(b, why: why, source: source, now: now) { self.askForDictionary(id, now: now) }
    }

    /// Asks the neighbours on every up link (at most once per `dictionaryAskInterval`; with no link up, at the first
    /// tick after one comes up).
    func askForDictionary(_ id: UInt8, now: Double) {
        let last = self.dictionaryState.wanted[id] ?? -1e9
        self.dictionaryState.wanted[id] = last
        let up = self.linkOrder.filter { self.links[$0]?.up == true }
        guard now - last >= Self.dictionaryAskInterval, !up.isEmpty else { return }
        self.dictionaryState.wanted[id] = now
        self.emit(.event(.dictionary("asking the neighbours for dictionary \(id)")))
        for name in up { self.dictionaryState.requestsDue[name, default: []].insert(id) }
    }

    /// Each tick: dictionaries still wanted are asked for again now and then; bundles kept for one that arrived are
    /// read (delivered, receipted) as if they had just come.
    func dictionaryTick(now: Double) {
        for id in self.dictionaryState.wanted.keys.sorted() where !self.compressor.shelf.holds(id) { self.askForDictionary(id, now: now) }
        guard self.dictionaryState.arrived else { return }
        self.dictionaryState.arrived = false
        guard let kept = self.storing("read the bundles kept unread", { try self.store.waiting(origin: nil) }) else { return }
        for w in kept {
            let b: CourierBundle
            do { b = try CourierBundle(decoding: w.data) } catch {
                do { try self.store.dropUnread(w.id, gaveUp: "damaged in the store: \(error)", now: Int64(now)) } catch let dropError {
                    self.rejectStorage("cannot drop the damaged waiting bundle \(w.id): \(dropError)", dropError)
                }
                continue
            }
            guard let id = b.compression.dictionary, self.compressor.shelf.holds(id) else { continue }
            if case .node = b.destination {
                // Taken in now as if it had just arrived (its dictionary came): delivered and receipted.
                do { try self.store.releaseUnread(b.id) } catch {
                    self.rejectStorage("cannot take in \(b.id) kept for a dictionary: \(error)", error)
                    continue
                }
                if case .delivered = self.accept(b, from: nil, source: "kept for dictionary \(id)", now: now),
                   b.kind != .receipt && b.kind != .failure && b.kind != .identity {
                    self.queueReceipt(for: b.id, now: now, within: 1)
                }
            } else {
                // A flood held to pass on: only its delivery here waited.
                do {
                    try self.store.dropUnread(b.id, gaveUp: nil, now: Int64(now))
                    try self.deliverLocally(b, now: now)
                } catch let e as StoreError {
                    self.rejectStorage("\(b.id): kept for dictionary \(id), not put in the inbox: \(e)", e)
                } catch {
                    self.reject("\(b.id): kept for dictionary \(id), still unreadable with it: \(error)")
                }
            }
        }
    }

    /// The record type 6 to send on a link now, if any: a request for what we wait for, else what we hold (with every
    /// announce, and when it changed). Nothing when we hold none and want none (so older neighbours hear no change).
    func dictionaryRecord(for link: String, withAnnounce: Bool) -> Record? {
        if let ids = self.dictionaryState.requestsDue[link], !ids.isEmpty {
            return .dictionaries(DictionariesRecord(isRequest: true, entries: ids.sorted().map { DictionariesRecord.Entry(id: $0, fingerprint: 0) }))
        }
        let mine = self.compressor.shelf.entries
        guard !mine.isEmpty, withAnnounce || self.dictionaryState.holdingsDue.contains(link) else { return nil }
        // B (reads bare blocks) only when every neighbour heard on the link announced bit 6: an older one skips a
        // record with B, and would forget what we hold.
        let here = self.neighbours.values.filter { $0.lastHeard[link] != nil }
        let bare = !here.isEmpty && here.allSatisfy { $0.capabilities & AnnounceRecord.bareBlocks != 0 }
        return .dictionaries(DictionariesRecord(isRequest: false, entries: mine, readsBare: bare))
    }

    /// The record went out on the link.
    func dictionaryRecordSent(_ r: Record, link: String) {
        guard case .dictionaries(let d) = r else { return }
        if d.isRequest { self.dictionaryState.requestsDue[link] = nil } else { self.dictionaryState.holdingsDue.remove(link) }
    }
}

/// Whether a bundle made here for `destination` may go in the bare block form (SPEC 7.2, 11.11): a node whose last
/// dictionaries record set B.
public enum BareChoice {
    public static func allowed(destination: Destination, store: any NodeStorage) throws(StoreError) -> Bool {
        guard case .node(let n) = destination else { return false }
        return try store.dictionaryHolders()[n]?.contains(.readsBareMark) ?? false
    }
}

/// Which federation dictionaries a bundle made here may use (SPEC 7.6): for a node, those it said it holds; for a
/// group or everyone, those every neighbour heard within `neighbourTimeout` said it holds (none heard: none); always
/// with our own copy on the shelf. Only kinds 0-5: receipts, identities, failure notices and dictionaries stay
/// readable by every node (dictionary 1).
public enum DictionaryChoice {
    public static func candidates(kind: Kind, destination: Destination, me: ShortID, store: any NodeStorage, shelf: DictionaryShelf,
                                  now: Double, neighbourTimeout: Double = 1_800) throws(StoreError) -> [UInt8] {
        switch kind {
        case .alert, .aidRequest, .aidOffer, .grievance, .minutes, .text: break
        default: return []
        }
        let held = try store.dictionaries()
        guard !held.isEmpty else { return [] }
        for d in held where !shelf.holds(d.id) {
            // A damaged one stays off the shelf: the running relay reports it (`shelveDictionaries`).
            do { try shelf.put(id: d.id, bytes: d.bytes) } catch { continue }
        }
        let mine = Set(shelf.entries)
        let holders = try store.dictionaryHolders()
        var usable: Set<DictionariesRecord.Entry>
        switch destination {
        case .node(let n):
            if n == me { return [] }
            usable = mine.intersection(holders[n] ?? [])
        case .group, .everyone:
            let neighbours = try store.peers().filter { p in
                p.keys.nodeID.short != me && p.lastHeard.map { now - Double($0) < neighbourTimeout } ?? false
            }
            guard !neighbours.isEmpty else { return [] }
            usable = mine
            for p in neighbours { usable.formIntersection(holders[p.keys.nodeID.short] ?? []) }
        }
        return usable.map(\.id).sorted()
    }
}

/// A dictionary bundle's checks, stand-alone: the engine's intake (`takeDictionary`) and `relay import`
/// (`ArchiveImport`) take dictionaries in with them.
enum DictionaryIntake {
    struct Refusal: Error { let why: String }

    /// Checks a dictionary bundle (its origin proven, a valid label and dictionary): the dictionary to keep, or why
    /// it is refused.
    static func check(_ b: CourierBundle, proof: OriginProof, compressor: BodyCompressor, now: Double) -> Result<StoredDictionary, Refusal> {
        guard proof == .proven else { return .failure(Refusal(why: "dictionary bundle \(b.id): its origin signature is not proven here")) }
        let label: DictionaryLabel
        let bytes: [UInt8]
        do {
            label = try DictionaryLabel.of(b)
            bytes = try b.content(compressor: compressor)
            try FederationDictionary.check(bytes)
        } catch {
            return .failure(Refusal(why: "dictionary bundle \(b.id): \(error)"))
        }
        return .success(StoredDictionary(id: label.id, fingerprint: FederationDictionary.fingerprint(bytes), origin: b.origin,
                                         version: label.version, made: Int64(now), bytes: bytes, bundle: b.encode()))
    }

    /// Whether a checked dictionary is kept over those `held`: it is new, or replaces a different one under its id
    /// from an older bundle (the newer bundle wins everywhere, so every relay ends up with the same one).
    static func replaces(_ d: StoredDictionary, of b: CourierBundle, held: [StoredDictionary]) -> Bool {
        guard let same = held.first(where: { $0.id == d.id }) else { return true }
        if same.fingerprint == d.fingerprint { return false }
        if let data = same.bundle, case .success(let old) = Result(catching: { () throws(WireError) in try CourierBundle(decoding: data) }),
           old.id.created > b.id.created { return false }
        return true
    }
}
