"""The SQLite store: schema and migrations, writes, reads, the follower, integrity checks."""
