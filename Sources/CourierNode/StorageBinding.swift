// The one file of the engine that names the SQLite store's concrete type: it binds `Store` to the engine's storage
// boundary (NodeStorage.swift). Everything else in the engine sees only `NodeStorage` and the store's value types.
import CourierStore

extension Store: NodeStorage {}
