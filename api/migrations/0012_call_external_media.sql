-- The external media a call streamed to (`external_media_start`), as a JSON array
-- of their ids.
ALTER TABLE calls ADD COLUMN external_media_ids TEXT NOT NULL DEFAULT '[]';
