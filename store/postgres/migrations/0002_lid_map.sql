-- Phone-number user -> LID user, learned at pairing. Rows belong to the
-- device that learned them, so deleting or re-linking the device drops
-- them; two devices of one account may both hold the same pair.
CREATE TABLE walink_lid_map (
	device     BYTEA NOT NULL REFERENCES walink_devices (noise_pub) ON DELETE CASCADE,
	phone_user TEXT  NOT NULL,
	lid_user   TEXT  NOT NULL,
	lid_server TEXT  NOT NULL,
	PRIMARY KEY (device, phone_user)
);

CREATE INDEX walink_lid_map_by_phone ON walink_lid_map (phone_user);
