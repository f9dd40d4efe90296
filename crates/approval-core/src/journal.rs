//! The SQLite journal: one row per message, a state machine, the audit trail.
