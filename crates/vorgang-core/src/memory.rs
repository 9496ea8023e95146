//! In-memory port implementations, for tests and for embedding the core without a database.
