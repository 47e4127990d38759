-- Providers' health from periodic SIP OPTIONS probes (the original's
-- voip-kamailio-proxy health checks): 'unknown' until probed, then 'healthy'
-- (it answered) or 'unhealthy' (it did not); health_checked_at is the last probe
-- it answered.
ALTER TABLE providers ADD COLUMN health_status TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE providers ADD COLUMN health_checked_at TEXT;
