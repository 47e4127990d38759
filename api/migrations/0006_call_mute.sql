-- Which way a live call is muted: '' (not), 'in' (what the caller says is not
-- heard), 'out' (the caller hears silence) or 'both'.
ALTER TABLE calls ADD COLUMN mute_direction TEXT NOT NULL DEFAULT '';
