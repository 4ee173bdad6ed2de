-- Counting data, second step (see docs/counting.md).
--
-- 1. Listing events across a tenant's cameras in time order (GET /events without a camera filter,
--    or with a site's several cameras) needs an index led by time after tenant_id; the primary key
--    is led by camera_id. The keyset is (occurred_at, camera_id, event_id), a total order.
CREATE INDEX counting_results_time ON counting_results (tenant_id, occurred_at, camera_id, event_id);

-- 2. The idempotency ledger is written once per event on the ingestion hot path; measured there,
--    its foreign key and its occurred_at index cost about a quarter of the ingestion statement.
--    - The foreign key is redundant: ingestion checks every camera_id against the tenant's cameras
--      and locks those rows (FOR KEY SHARE) in the same transaction before inserting, so no row can
--      name a missing camera. What the key also did, deleting ledger rows with their camera, is not
--      needed for correctness: camera ids are identities, never reused, so a deleted camera's rows
--      match nothing; tenant erasure deletes by tenant_id; retention deletes by occurred_at.
--    - Retention purges old ledger rows once a day; a sequential scan serves that job well enough,
--      and dropping the index takes one index insert off every ingested event.
ALTER TABLE counting_event_ids DROP CONSTRAINT counting_event_ids_tenant_id_camera_id_fkey;
DROP INDEX counting_event_ids_occurred;
