-- Devices and their one-time pre-keys.
--
-- Secret columns (*_priv, adv_secret) are BLOBs without a length check:
-- today they hold the raw 32 bytes, and a future at-rest cipher writes a
-- longer, self-describing envelope into the same columns (see doc.go).
-- A zero key or zero time is stored as NULL so it comes back as the zero
-- value rather than as a clamped scalar or the Unix epoch.
CREATE TABLE devices (
	seq              INTEGER PRIMARY KEY AUTOINCREMENT, -- insertion order; ties in created_at
	noise_pub        BLOB    NOT NULL UNIQUE CHECK (length(noise_pub) = 32),
	noise_priv       BLOB,
	identity_pub     BLOB    CHECK (identity_pub IS NULL OR length(identity_pub) = 32),
	identity_priv    BLOB,
	spk_id           INTEGER NOT NULL DEFAULT 0,
	spk_pub          BLOB    CHECK (spk_pub IS NULL OR length(spk_pub) = 32),
	spk_priv         BLOB,
	spk_sig          BLOB    CHECK (spk_sig IS NULL OR length(spk_sig) = 64),
	registration_id  INTEGER NOT NULL DEFAULT 0,
	adv_secret       BLOB,

	-- Own JID and LID, one column per field so no JID text format is
	-- baked into the schema. Unpaired: '' / 0.
	jid_user         TEXT    NOT NULL DEFAULT '',
	jid_agent        INTEGER NOT NULL DEFAULT 0,
	jid_device       INTEGER NOT NULL DEFAULT 0,
	jid_integrator   INTEGER NOT NULL DEFAULT 0,
	jid_server       TEXT    NOT NULL DEFAULT '',
	lid_user         TEXT    NOT NULL DEFAULT '',
	lid_agent        INTEGER NOT NULL DEFAULT 0,
	lid_device       INTEGER NOT NULL DEFAULT 0,
	lid_integrator   INTEGER NOT NULL DEFAULT 0,
	lid_server       TEXT    NOT NULL DEFAULT '',

	account          BLOB,
	primary_identity BLOB    CHECK (primary_identity IS NULL OR length(primary_identity) = 32),
	business_name    TEXT    NOT NULL DEFAULT '',
	push_name        TEXT    NOT NULL DEFAULT '',
	platform         TEXT    NOT NULL DEFAULT '',
	linked_at        INTEGER,            -- Unix nanoseconds
	clock_offset     INTEGER NOT NULL DEFAULT 0, -- nanoseconds
	server_url       TEXT    NOT NULL DEFAULT '',
	server_root      BLOB    CHECK (server_root IS NULL OR length(server_root) = 32),
	next_pre_key_id  INTEGER NOT NULL DEFAULT 1,
	created_at       INTEGER             -- Unix nanoseconds
);

CREATE INDEX devices_by_jid ON devices (jid_user, jid_server, jid_device) WHERE jid_server <> '';
CREATE INDEX devices_by_lid ON devices (lid_user, lid_server, lid_device) WHERE lid_server <> '';
CREATE INDEX devices_by_age ON devices (created_at, seq);

CREATE TABLE pre_keys (
	device BLOB    NOT NULL REFERENCES devices (noise_pub) ON DELETE CASCADE,
	id     INTEGER NOT NULL CHECK (id BETWEEN 1 AND 16777215),
	pub    BLOB    NOT NULL CHECK (length(pub) = 32),
	priv   BLOB    NOT NULL,
	PRIMARY KEY (device, id)
) WITHOUT ROWID;
