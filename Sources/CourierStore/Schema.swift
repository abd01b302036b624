import GRDB

/// Versioned schema. Never edit a shipped migration; add a new one and bump `version`.
enum Schema {
    /// The highest schema this build knows. Stored in `PRAGMA user_version` after migrating.
    static let version = 10

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            // Small counters and settings: bundle sequence, packet-counter reservation, quiet mode, totals.
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);

                -- Bundles this node holds: queued for a node, a group or everyone.
                CREATE TABLE bundle (
                    rowid INTEGER PRIMARY KEY,
                    origin INTEGER NOT NULL, created INTEGER NOT NULL, sequence INTEGER NOT NULL,
                    digest INTEGER NOT NULL,
                    kind INTEGER NOT NULL,
                    priority INTEGER NOT NULL,
                    dest_type INTEGER NOT NULL,          -- 0 node, 1 group, 2 everyone
                    dest INTEGER,                        -- short id or group id
                    expires INTEGER NOT NULL,            -- Courier minutes
                    received INTEGER NOT NULL,           -- unix seconds, when this node took it
                    slot INTEGER NOT NULL,               -- fair-queueing slot within its class
                    size INTEGER NOT NULL,
                    custody INTEGER NOT NULL,            -- 1: we hold custody until a next hop acknowledges
                    local INTEGER NOT NULL,              -- 1: submitted on this node
                    data BLOB NOT NULL,                  -- the encoded bundle
                    UNIQUE (origin, created, sequence)
                );
                CREATE INDEX bundle_schedule ON bundle (priority, slot, received);
                CREATE INDEX bundle_evict ON bundle (priority DESC, received);
                CREATE INDEX bundle_expiry ON bundle (expires);
                CREATE INDEX bundle_digest ON bundle (digest);

                -- Fair-queueing: the last slot each origin used in each class.
                CREATE TABLE origin_slot (
                    origin INTEGER NOT NULL, priority INTEGER NOT NULL, last_slot INTEGER NOT NULL,
                    PRIMARY KEY (origin, priority)
                ) WITHOUT ROWID;

                -- Per-neighbour transmission state of a bundle.
                CREATE TABLE transmission (
                    bundle INTEGER NOT NULL REFERENCES bundle(rowid) ON DELETE CASCADE,
                    neighbour BLOB NOT NULL,             -- 16-byte node id
                    transfer INTEGER NOT NULL,
                    fragments INTEGER NOT NULL,          -- how many records carry it at that link's MTU
                    sent BLOB NOT NULL,                  -- bitmap of fragments sent at least once
                    acked BLOB NOT NULL,                 -- bitmap of fragments the neighbour acknowledged
                    attempts INTEGER NOT NULL,
                    next_retry INTEGER NOT NULL,         -- unix seconds
                    done INTEGER NOT NULL,               -- 1: the neighbour has it all
                    PRIMARY KEY (bundle, neighbour)
                );

                -- Ids seen, so a flood that comes back around is dropped at once. Kept until the bundle expires.
                CREATE TABLE seen (
                    origin INTEGER NOT NULL, created INTEGER NOT NULL, sequence INTEGER NOT NULL,
                    expires INTEGER NOT NULL,
                    digest INTEGER NOT NULL,
                    PRIMARY KEY (origin, created, sequence)
                ) WITHOUT ROWID;
                CREATE INDEX seen_expiry ON seen (expires);

                -- Bundles delivered to this node.
                CREATE TABLE inbox (
                    rowid INTEGER PRIMARY KEY,
                    origin INTEGER NOT NULL, created INTEGER NOT NULL, sequence INTEGER NOT NULL,
                    kind INTEGER NOT NULL,
                    dest_type INTEGER NOT NULL, dest INTEGER,
                    respond_by INTEGER, reference TEXT,
                    content BLOB NOT NULL,
                    received INTEGER NOT NULL,
                    read INTEGER NOT NULL DEFAULT 0,
                    UNIQUE (origin, created, sequence)
                );

                -- Fragments of bundles being received, so a half-received transfer survives a restart.
                CREATE TABLE reassembly (
                    sender BLOB NOT NULL, transfer INTEGER NOT NULL, idx INTEGER NOT NULL,
                    count INTEGER NOT NULL, received INTEGER NOT NULL, data BLOB NOT NULL,
                    PRIMARY KEY (sender, transfer, idx)
                ) WITHOUT ROWID;

                -- The change feed: every state change, in order. `relay queue tail` follows it.
                CREATE TABLE event (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    at INTEGER NOT NULL,
                    type TEXT NOT NULL,
                    bundle TEXT,
                    kind INTEGER,
                    priority INTEGER,
                    neighbour TEXT,
                    detail TEXT
                );
                """)
        }
        m.registerMigration("v2") { db in
            // Nodes whose keys this relay knows (from announces or `relay peers add`), and the trust list.
            try db.execute(sql: """
                CREATE TABLE peer (
                    node BLOB PRIMARY KEY NOT NULL,      -- 16-byte node id
                    signing BLOB NOT NULL,               -- Ed25519 public key
                    agreement BLOB NOT NULL,             -- X25519 public key
                    name TEXT,
                    first_heard INTEGER,                 -- unix seconds; NULL: never heard on a link
                    last_heard INTEGER,
                    trusted INTEGER NOT NULL DEFAULT 0,  -- 1: on the trust list
                    added INTEGER                        -- unix seconds it went on the trust list
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v3") { db in
            // Bundles for this node it cannot read yet (the origin's keys are not known here): kept, and read when
            // the keys arrive. Whether a delivered message was end-to-end encrypted.
            try db.execute(sql: """
                CREATE TABLE waiting (
                    origin INTEGER NOT NULL, created INTEGER NOT NULL, sequence INTEGER NOT NULL,
                    kind INTEGER NOT NULL,
                    expires INTEGER NOT NULL,            -- Courier minutes
                    since INTEGER NOT NULL,              -- unix seconds, when it arrived
                    reason TEXT NOT NULL,
                    data BLOB NOT NULL,                  -- the encoded bundle
                    PRIMARY KEY (origin, created, sequence)
                ) WITHOUT ROWID;
                ALTER TABLE inbox ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
                """)
        }
        m.registerMigration("v4-replay") { db in
            // Each sender's packet-counter replay windows (SPEC 4.8), so a packet captured before a restart and sent
            // again after it is refused as a replay.
            try db.execute(sql: """
                CREATE TABLE replay_window (
                    node BLOB PRIMARY KEY NOT NULL,      -- 16-byte node id of the sender
                    state BLOB NOT NULL                  -- the windows, JSON
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v5-origin") { db in
            // Whether a delivered message's origin signature verified with its origin's known keys (SPEC 6.12).
            try db.execute(sql: "ALTER TABLE inbox ADD COLUMN proven INTEGER NOT NULL DEFAULT 0")
        }
        m.registerMigration("v6-pacts") { db in
            // Mutual-aid pact records (SPEC 6.15) delivered here, the ledger's source; and the reminders, obligations
            // and escalations this relay already acted on, so a restart does not repeat them.
            try db.execute(sql: """
                CREATE TABLE pact_record (
                    origin INTEGER NOT NULL, created INTEGER NOT NULL, sequence INTEGER NOT NULL,
                    kind INTEGER NOT NULL,
                    record BLOB NOT NULL,                -- the pact extension's value
                    content BLOB NOT NULL,               -- the bundle's text
                    proven INTEGER NOT NULL,             -- its origin signature verified here
                    received INTEGER NOT NULL,           -- unix seconds
                    data BLOB NOT NULL,                  -- the whole signed bundle, for anyone to verify again
                    PRIMARY KEY (origin, created, sequence)
                ) WITHOUT ROWID;
                CREATE TABLE pact_notice (
                    subject TEXT NOT NULL,               -- a request's bundle id
                    what TEXT NOT NULL,                  -- obligation, reminder, escalated
                    at INTEGER NOT NULL,
                    PRIMARY KEY (subject, what)
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v7-dictionaries") { db in
            // Federation compression dictionaries (SPEC 7.6) this relay trained or received, the few most recent
            // (`Store.dictionariesKept`), and which ones its neighbours said they hold (record type 6, 5.10).
            try db.execute(sql: """
                CREATE TABLE dictionary (
                    id INTEGER PRIMARY KEY NOT NULL,     -- wire id, 2-255
                    fingerprint INTEGER NOT NULL,        -- first two bytes of SHA-256 of the dictionary
                    origin INTEGER NOT NULL,             -- short id of the relay that trained it
                    version INTEGER NOT NULL,
                    made INTEGER NOT NULL,               -- unix seconds it was trained or received
                    bytes BLOB NOT NULL,                 -- the zstd dictionary
                    bundle BLOB,                         -- the signed dictionary bundle; NULL: trained here, not published
                    texts INTEGER,                       -- trained here: texts trained on
                    ratio REAL,                          -- trained here: held-out compressed/original with it
                    ratio_default REAL                   -- ... and with dictionary 1
                ) WITHOUT ROWID;
                CREATE TABLE dictionary_holder (
                    node INTEGER NOT NULL,               -- short id of the neighbour
                    id INTEGER NOT NULL,
                    fingerprint INTEGER NOT NULL,
                    heard INTEGER NOT NULL,              -- unix seconds
                    PRIMARY KEY (node, id)
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v8-feed-local") { db in
            // Whether an `enqueued` entry is for a bundle made here (the runtime adopts those): a column, not the
            // ", local" people read in `detail`. Entries written before are marked from that text once.
            try db.execute(sql: """
                ALTER TABLE event ADD COLUMN local INTEGER NOT NULL DEFAULT 0;
                UPDATE event SET local = 1 WHERE type = 'enqueued' AND detail LIKE '%, local%';
                """)
        }
        m.registerMigration("v9-drills") { db in
            // Live drills (SPEC 6.17) this relay started, and the answers that came back (receipt parts with hop counts,
            // or signed receipts from relays that could not send parts).
            try db.execute(sql: """
                CREATE TABLE drill (
                    bundle TEXT PRIMARY KEY NOT NULL,    -- the drill alert's bundle id
                    started INTEGER NOT NULL,            -- unix seconds
                    scope TEXT NOT NULL,                 -- "everyone", or the pact it is for
                    expected TEXT NOT NULL               -- short ids (hex, space-separated) expected to answer
                ) WITHOUT ROWID;
                CREATE TABLE drill_answer (
                    drill TEXT NOT NULL,                 -- the drill's bundle id
                    node INTEGER NOT NULL,               -- short id of the relay that answered
                    at INTEGER NOT NULL,                 -- unix seconds the answer arrived here
                    hops INTEGER,                        -- hops from here the relay got the drill; NULL: not said
                    PRIMARY KEY (drill, node)
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v10-copy-budgets") { db in
            // Binary spray-and-wait (SPEC 5.14): how many copies of a directed bundle this relay may still hold and
            // hand on, its own included. NULL: never said (made here, from an older relay, held before this version):
            // the engine's whole budget.
            try db.execute(sql: "ALTER TABLE bundle ADD COLUMN copies INTEGER")
        }
        return m
    }
}
