-- The legs a call dials (`connect`, outbound calls): each is a call of its own
-- whose `master_call_id` is the call that dialled it; the dialling call lists them
-- in `chained_call_ids` (a JSON array). `groupcall_id` names the groupcall that
-- rang them together.
ALTER TABLE calls ADD COLUMN master_call_id TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN chained_call_ids TEXT NOT NULL DEFAULT '[]';
ALTER TABLE calls ADD COLUMN groupcall_id TEXT NOT NULL DEFAULT '';
