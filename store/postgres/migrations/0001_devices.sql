-- Devices and their one-time pre-keys.
--
-- Secret columns (*_priv, adv_secret) are BYTEA without a length check:
-- today they hold the raw 32 bytes, and a future at-rest cipher writes a
-- longer, self-describing envelope into the same columns (see doc.go).
-- A zero key or zero time is stored as NULL so it comes back as the zero
-- value rather than as a clamped scalar or the Unix epoch. Times are Unix
-- nanoseconds in BIGINT: timestamptz keeps only microseconds.
CREATE TABLE walink_devices (
	noise_pub        BYTEA   PRIMARY KEY CHECK (length(noise_pub) = 32),
	seq              BIGINT  GENERATED ALWAYS AS IDENTITY UNIQUE, -- insertion order; ties in created_at
	noise_priv       BYTEA,
	identity_pub     BYTEA   CHECK (length(identity_pub) = 32),
	identity_priv    BYTEA,
	spk_id           BIGINT  NOT NULL DEFAULT 0,
	spk_pub          BYTEA   CHECK (length(spk_pub) = 32),
	spk_priv         BYTEA,
	spk_sig          BYTEA   CHECK (length(spk_sig) = 64),
	registration_id  BIGINT  NOT NULL DEFAULT 0,
	adv_secret       BYTEA,

	-- Own JID and LID, one column per field so no JID text format is
	-- baked into the schema. Unpaired: '' / 0.
	jid_user         TEXT    NOT NULL DEFAULT '',
	jid_agent        BIGINT  NOT NULL DEFAULT 0,
	jid_device       BIGINT  NOT NULL DEFAULT 0,
	jid_integrator   BIGINT  NOT NULL DEFAULT 0,
	jid_server       TEXT    NOT NULL DEFAULT '',
	lid_user         TEXT    NOT NULL DEFAULT '',
	lid_agent        BIGINT  NOT NULL DEFAULT 0,
	lid_device       BIGINT  NOT NULL DEFAULT 0,
	lid_integrator   BIGINT  NOT NULL DEFAULT 0,
	lid_server       TEXT    NOT NULL DEFAULT '',

	account          BYTEA,
	primary_identity BYTEA   CHECK (length(primary_identity) = 32),
	business_name    TEXT    NOT NULL DEFAULT '',
	push_name        TEXT    NOT NULL DEFAULT '',
	platform         TEXT    NOT NULL DEFAULT '',
	linked_at        BIGINT,
	clock_offset     BIGINT  NOT NULL DEFAULT 0,
	server_url       TEXT    NOT NULL DEFAULT '',
	server_root      BYTEA   CHECK (length(server_root) = 32),
	next_pre_key_id  BIGINT  NOT NULL DEFAULT 1,
	created_at       BIGINT
);

CREATE INDEX walink_devices_by_jid ON walink_devices (jid_user, jid_server, jid_device) WHERE jid_server <> '';
CREATE INDEX walink_devices_by_lid ON walink_devices (lid_user, lid_server, lid_device) WHERE lid_server <> '';
CREATE INDEX walink_devices_by_age ON walink_devices (created_at NULLS FIRST, seq);

CREATE TABLE walink_pre_keys (
	device BYTEA  NOT NULL REFERENCES walink_devices (noise_pub) ON DELETE CASCADE,
	id     BIGINT NOT NULL CHECK (id BETWEEN 1 AND 16777215),
	pub    BYTEA  NOT NULL CHECK (length(pub) = 32),
	priv   BYTEA  NOT NULL,
	PRIMARY KEY (device, id)
);
