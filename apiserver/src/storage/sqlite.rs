//! The SQLite backend (embedded default): WAL, synchronous=FULL, a revision log for watches.
