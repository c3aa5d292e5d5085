-- Reconnect state (store.Device.ServerChain, WebVersion,
-- WebVersionFetchedAt; CHANGES-2026 §7, §8). Rows written before this
-- migration have none: their next connect is a full XX handshake with the
-- built-in client version, exactly what they did before.
--
-- server_chain holds the verified server certificate chain in the clear
-- form (first byte C1) or, with encryption at rest, the sealed envelope
-- (first byte 01) like the other secret columns.
ALTER TABLE walink_devices ADD COLUMN server_chain BYTEA;
ALTER TABLE walink_devices ADD COLUMN web_version TEXT NOT NULL DEFAULT '';
ALTER TABLE walink_devices ADD COLUMN web_version_fetched_at BIGINT; -- Unix nanoseconds
