-- A session stored before the pairing reply was sent, not yet confirmed
-- by the server (store.Device.Unconfirmed). Existing rows were written by a
-- walink that stored sessions only after pairing, so they are confirmed.
ALTER TABLE walink_devices ADD COLUMN unconfirmed BOOLEAN NOT NULL DEFAULT false;
