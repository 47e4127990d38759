-- The most calls a provider may have up at once; 0 means no limit.
ALTER TABLE providers ADD COLUMN max_concurrent_calls BIGINT NOT NULL DEFAULT 0;
