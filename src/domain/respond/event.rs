//! Decoding the events that report an exposed credential (filled in by the event decoder).
