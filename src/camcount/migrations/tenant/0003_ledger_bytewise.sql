-- The idempotency ledger only answers "stored before?": its event_id needs equality, never a
-- linguistic order. Under the database's collation every comparison in the primary key's B-tree
-- went through strcoll(); "C" compares bytes (measured: about a tenth of the ledger insert). The
-- ingestion statement already sorts the ledger rows bytewise (its lock order), now also the index's.
ALTER TABLE counting_event_ids ALTER COLUMN event_id TYPE text COLLATE "C";
