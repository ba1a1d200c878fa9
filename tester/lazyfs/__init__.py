"""lazyfs: a FUSE filesystem that loses unsynced writes on command (see docs/testing.md)."""
