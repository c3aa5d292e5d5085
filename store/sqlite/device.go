package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
)

var (
	selectDevice = `SELECT ` + deviceColumns + ` FROM devices`

	upsertDevice = func() string {
		cols := strings.Split(strings.Join(strings.Fields(deviceColumns), ""), ",")
		var set []string
		for _, c := range cols[1:] { // all but noise_pub, the conflict key
			set = append(set, c+" = excluded."+c)
		}
		return `INSERT INTO devices (` + deviceColumns + `) VALUES (?` + strings.Repeat(", ?", numDeviceColumns-1) + `)
			ON CONFLICT (noise_pub) DO UPDATE SET ` + strings.Join(set, ", ")
	}()
)

func notFound(what string) error { return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound) }

type scanner interface{ Scan(dest ...any) error }

func (s *Store) scanDevice(sc scanner) (*store.Device, error) {
	var r row
	if err := sc.Scan(r.Dest()...); err != nil {
		return nil, err
	}
	return decodeRow(&r, s.sec)
}

// Devices returns every device, oldest CreatedAt first (zero CreatedAt
// first of all), ties in the order they were first stored.
func (s *Store) Devices(ctx context.Context) ([]*store.Device, error) {
	rows, err := s.r.QueryContext(ctx, selectDevice+` ORDER BY created_at, seq`)
	if err != nil {
		return nil, fail(ctx, "devices", err)
	}
	defer rows.Close()
	devs := []*store.Device{}
	for rows.Next() {
		d, err := s.scanDevice(rows)
		if err != nil {
			return nil, fail(ctx, "devices", err)
		}
		devs = append(devs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, "devices", err)
	}
	return devs, nil
}

// Device returns the device with this noise public key.
func (s *Store) Device(ctx context.Context, noisePub keys.PublicKey) (*store.Device, error) {
	d, err := s.scanDevice(s.r.QueryRowContext(ctx, selectDevice+` WHERE noise_pub = ?`, noisePub.Bytes()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("device " + noisePub.String())
	}
	if err != nil {
		return nil, fail(ctx, "device", err)
	}
	return d, nil
}

// DeviceByJID returns the paired device whose own JID or LID is id, device
// number included. Should two records carry the same JID (a stale record
// next to a re-link), the most recently stored one wins.
func (s *Store) DeviceByJID(ctx context.Context, id jid.JID) (*store.Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, "device by jid", err)
	}
	if id.Server == "" {
		return nil, notFound("device by jid")
	}
	c := toJIDCols(id)
	d, err := s.scanDevice(s.r.QueryRowContext(ctx, selectDevice+`
		WHERE (jid_user = ?1 AND jid_agent = ?2 AND jid_device = ?3 AND jid_integrator = ?4 AND jid_server = ?5)
		   OR (lid_user = ?1 AND lid_agent = ?2 AND lid_device = ?3 AND lid_integrator = ?4 AND lid_server = ?5)
		ORDER BY seq DESC LIMIT 1`,
		c.User, c.Agent, c.Device, c.Integrator, c.Server))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("device by jid")
	}
	if err != nil {
		return nil, fail(ctx, "device by jid", err)
	}
	return d, nil
}

// PutDevice inserts or replaces d, keeping its pre-keys, and rewrites its
// LID mapping, in one transaction.
func (s *Store) PutDevice(ctx context.Context, d *store.Device) error {
	r, err := encodeDevice(d, s.sec)
	if err != nil {
		return err
	}
	return s.write(ctx, "put device", func(tx *sql.Tx) error {
		// An upsert, not INSERT OR REPLACE: replace deletes the old row
		// first, and the delete would cascade to the pre-keys.
		if _, err := tx.ExecContext(ctx, upsertDevice, r.Args()...); err != nil {
			return err
		}
		if err := s.step("device"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM lid_map WHERE device = ?`, r.NoisePub); err != nil {
			return err
		}
		if err := s.step("lid_map delete"); err != nil {
			return err
		}
		if d.ID.User != "" && d.LID.User != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO lid_map (device, phone_user, lid_user, lid_server) VALUES (?, ?, ?, ?)`,
				r.NoisePub, d.ID.User, d.LID.User, d.LID.Server); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteDevice removes the device with its pre-keys and mappings.
func (s *Store) DeleteDevice(ctx context.Context, noisePub keys.PublicKey) error {
	pub := noisePub.Bytes()
	return s.write(ctx, "delete device", func(tx *sql.Tx) error {
		// Explicit deletes rather than relying on ON DELETE CASCADE alone,
		// so a file opened elsewhere with foreign keys off is cleaned too.
		for i, q := range []string{
			`DELETE FROM pre_keys WHERE device = ?`,
			`DELETE FROM lid_map WHERE device = ?`,
			`DELETE FROM devices WHERE noise_pub = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, pub); err != nil {
				return err
			}
			if err := s.step(fmt.Sprintf("delete %d", i)); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutPreKeys stores pks for the device and sets its NextPreKeyID to next.
// A pre-key id given twice keeps the later key.
func (s *Store) PutPreKeys(ctx context.Context, noisePub keys.PublicKey, pks []keys.PreKey, next uint32) error {
	for _, pk := range pks {
		if pk.ID == 0 || pk.ID > keys.MaxPreKeyID {
			return fmt.Errorf("%w: pre-key id %d out of range", ErrInvalid, pk.ID)
		}
		if pk.Private.IsZero() || pk.Public.IsZero() {
			return fmt.Errorf("%w: pre-key %d has a zero key", ErrInvalid, pk.ID)
		}
	}
	pub := noisePub.Bytes()
	// Encoded (and sealed) before the transaction: CPU work, and for a
	// custom Cipher maybe a remote call, that need not hold the write lock.
	batch, err := encodePreKeys(s.sec, pub, pks)
	if err != nil {
		return err
	}
	return s.write(ctx, "put pre-keys", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE devices SET next_pre_key_id = ? WHERE noise_pub = ?`, int64(next), pub)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return notFound("put pre-keys: device " + noisePub.String())
		}
		if len(pks) == 0 {
			return nil
		}
		// One statement for the whole batch: a statement per key cost ~10
		// small Go allocations per key (database/sql's and the driver's
		// per-Exec objects, the boxed arguments), 8,000 per login, whose
		// spans stay pinned by the few long-lived objects of a linking
		// burst. The rows arrive in order, so a repeated id's later key wins
		// as it did with one upsert per key.
		res, err = tx.ExecContext(ctx, `INSERT INTO pre_keys (device, id, pub, priv)
			SELECT ?1, j.value ->> 0, unhex(j.value ->> 1), unhex(j.value ->> 2) FROM json_each(?2) AS j WHERE true
			ON CONFLICT (device, id) DO UPDATE SET pub = excluded.pub, priv = excluded.priv`, pub, batch)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != int64(len(pks)) {
			return fmt.Errorf("%w: put pre-keys: %d of %d rows written", ErrCorrupt, n, len(pks))
		}
		return s.step("pre-key")
	})
}

// encodePreKeys writes pks as one JSON array of [id, "hex public",
// "hex private"] rows for PutPreKeys' json_each, sealing the private
// halves with sec. The string is built in place (strings.Builder hands
// over its buffer), so a batch is one allocation when nothing is sealed.
func encodePreKeys(sec secrets, owner []byte, pks []keys.PreKey) (string, error) {
	var b strings.Builder
	// [id,"64 hex","64 hex"], with id at most 8 digits: 147 bytes a row
	// unsealed; sealed rows grow the buffer once or twice.
	b.Grow(2 + len(pks)*148)
	b.WriteByte('[')
	var h [2 * keys.Size]byte
	for i, pk := range pks {
		if i > 0 {
			b.WriteByte(',')
		}
		var num [8]byte
		b.WriteByte('[')
		b.Write(strconv.AppendUint(num[:0], uint64(pk.ID), 10))
		b.WriteString(`,"`)
		k := pk.Public.Array()
		hex.Encode(h[:], k[:])
		b.Write(h[:])
		b.WriteString(`","`)
		if sec.C == nil {
			k = pk.Private.Array()
			hex.Encode(h[:], k[:])
			b.Write(h[:])
		} else {
			// Bytes, not k: k would escape to the Cipher and move to the
			// heap for every key, sealed or not.
			sealed, err := sec.Seal("pre_keys.priv", owner, pk.ID, pk.Private.Bytes())
			if err != nil {
				return "", err
			}
			for len(sealed) > 0 {
				n := hex.Encode(h[:], sealed[:min(len(sealed), keys.Size)])
				b.Write(h[:n])
				sealed = sealed[n/2:]
			}
		}
		b.WriteString(`"]`)
	}
	b.WriteByte(']')
	return b.String(), nil
}

// PreKey returns one stored pre-key.
func (s *Store) PreKey(ctx context.Context, noisePub keys.PublicKey, id uint32) (keys.PreKey, error) {
	var pub, priv []byte
	err := s.r.QueryRowContext(ctx, `SELECT pub, priv FROM pre_keys WHERE device = ? AND id = ?`, noisePub.Bytes(), int64(id)).Scan(&pub, &priv)
	if errors.Is(err, sql.ErrNoRows) {
		return keys.PreKey{}, notFound(fmt.Sprintf("pre-key %d", id))
	}
	if err != nil {
		return keys.PreKey{}, fail(ctx, "pre-key", err)
	}
	kp, err := s.sec.KeyPair("pre_keys.pub", "pre_keys.priv", noisePub.Bytes(), id, pub, priv)
	if err != nil {
		return keys.PreKey{}, fmt.Errorf("sqlite: pre-key %d: %w", id, err)
	}
	if kp.Private.IsZero() {
		return keys.PreKey{}, fmt.Errorf("sqlite: pre-key %d: %w: priv is empty", id, ErrCorrupt)
	}
	return keys.PreKey{ID: id, KeyPair: kp}, nil
}

// PreKeyCount returns how many pre-keys the device has (0 for an unknown
// device).
func (s *Store) PreKeyCount(ctx context.Context, noisePub keys.PublicKey) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM pre_keys WHERE device = ?`, noisePub.Bytes()).Scan(&n); err != nil {
		return 0, fail(ctx, "pre-key count", err)
	}
	return n, nil
}

// LIDForPhone returns the LID user (agent and device 0) mapped to the user
// part of phone.
func (s *Store) LIDForPhone(ctx context.Context, phone jid.JID) (jid.JID, error) {
	if err := ctx.Err(); err != nil {
		return jid.JID{}, fail(ctx, "lid for phone", err)
	}
	if phone.User == "" {
		return jid.JID{}, notFound("lid for phone")
	}
	var user, server string
	err := s.r.QueryRowContext(ctx, `SELECT m.lid_user, m.lid_server FROM lid_map m JOIN devices d ON d.noise_pub = m.device
		WHERE m.phone_user = ? ORDER BY d.seq DESC LIMIT 1`, phone.User).Scan(&user, &server)
	if errors.Is(err, sql.ErrNoRows) {
		return jid.JID{}, notFound("lid for phone")
	}
	if err != nil {
		return jid.JID{}, fail(ctx, "lid for phone", err)
	}
	return jid.New(user, server), nil
}

// Reseal seals, in one transaction, every secret still stored in the
// clear (rows written before the store had a Cipher). It fails with
// ErrNoCipher when the store was opened without WithCipher.
func (s *Store) Reseal(ctx context.Context) error {
	if s.sec.C == nil {
		return fmt.Errorf("%w (reseal)", ErrNoCipher)
	}
	return s.write(ctx, "reseal", func(tx *sql.Tx) error {
		// Devices are few: decode and rewrite them all (sealed columns
		// reseal under a fresh nonce, which is harmless).
		rows, err := tx.QueryContext(ctx, selectDevice)
		if err != nil {
			return err
		}
		var devs []*store.Device
		for rows.Next() {
			d, err := s.scanDevice(rows)
			if err != nil {
				rows.Close()
				return err
			}
			devs = append(devs, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range devs {
			r, err := encodeDevice(d, s.sec)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, upsertDevice, r.Args()...); err != nil {
				return err
			}
		}
		// Pre-keys are many: only those in the clear.
		type clear struct {
			device []byte
			id     int64
			priv   []byte
		}
		var todo []clear
		prows, err := tx.QueryContext(ctx, `SELECT device, id, priv FROM pre_keys WHERE length(priv) = ?`, keys.Size)
		if err != nil {
			return err
		}
		for prows.Next() {
			var c clear
			if err := prows.Scan(&c.device, &c.id, &c.priv); err != nil {
				prows.Close()
				return err
			}
			todo = append(todo, c)
		}
		prows.Close()
		if err := prows.Err(); err != nil {
			return err
		}
		for _, c := range todo {
			sealed, err := s.sec.Seal("pre_keys.priv", c.device, uint32(c.id), c.priv)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE pre_keys SET priv = ? WHERE device = ? AND id = ?`, sealed, c.device, c.id); err != nil {
				return err
			}
		}
		return nil
	})
}
