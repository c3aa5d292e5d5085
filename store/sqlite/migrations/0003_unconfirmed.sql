-- A session stored before the pairing reply was sent, not yet confirmed
-- by the server (store.Device.Unconfirmed). Existing rows were written by a
-- walink that stored sessions only after pairing, so they are confirmed.
ALTER TABLE devices ADD COLUMN unconfirmed INTEGER NOT NULL DEFAULT 0 CHECK (unconfirmed IN (0, 1));
