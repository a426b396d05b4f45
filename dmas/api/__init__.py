"""The HTTP layer's library half: keys, audit log, job records, uploads, queries and error bodies."""
