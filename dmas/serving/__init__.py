"""What the HTTP layer serves from: verified run bundles, lookups, queries, keys and the audit log."""
