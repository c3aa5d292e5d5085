package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
)

var (
	selectDevice = `SELECT ` + deviceColumns + ` FROM walink_devices`

	upsertDevice = func() string {
		cols := strings.Split(strings.Join(strings.Fields(deviceColumns), ""), ",")
		var set, ph []string
		for i, c := range cols {
			ph = append(ph, "$"+strconv.Itoa(i+1))
			if i > 0 { // all but noise_pub, the conflict key
				set = append(set, c+" = EXCLUDED."+c)
			}
		}
		return `INSERT INTO walink_devices (` + deviceColumns + `) VALUES (` + strings.Join(ph, ", ") + `)
			ON CONFLICT (noise_pub) DO UPDATE SET ` + strings.Join(set, ", ")
	}()
)

func notFound(what string) error { return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound) }

func (s *Store) scanDevice(sc pgx.Row) (*store.Device, error) {
	var r row
	if err := sc.Scan(r.Dest()...); err != nil {
		return nil, err
	}
	return decodeRow(&r, s.sec)
}

// Devices returns every device, oldest CreatedAt first (zero CreatedAt
// first of all), ties in the order they were first stored.
func (s *Store) Devices(ctx context.Context) ([]*store.Device, error) {
	rows, err := s.pool.Query(ctx, selectDevice+` ORDER BY created_at ASC NULLS FIRST, seq`)
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
	d, err := s.scanDevice(s.pool.QueryRow(ctx, selectDevice+` WHERE noise_pub = $1`, noisePub.Bytes()))
	if errors.Is(err, pgx.ErrNoRows) {
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
	d, err := s.scanDevice(s.pool.QueryRow(ctx, selectDevice+`
		WHERE (jid_user = $1 AND jid_agent = $2 AND jid_device = $3 AND jid_integrator = $4 AND jid_server = $5)
		   OR (lid_user = $1 AND lid_agent = $2 AND lid_device = $3 AND lid_integrator = $4 AND lid_server = $5)
		ORDER BY seq DESC LIMIT 1`,
		c.User, c.Agent, c.Device, c.Integrator, c.Server))
	if errors.Is(err, pgx.ErrNoRows) {
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
	return s.putDevice(ctx, d, nil)
}

func (s *Store) putDevice(ctx context.Context, d *store.Device, fence *Fence) error {
	r, err := encodeDevice(d, s.sec)
	if err != nil {
		return err
	}
	return s.writeFenced(ctx, "put device", fence, func(tx pgx.Tx) error {
		// The device row first: the upsert locks it, so concurrent writers
		// of one device serialize here before touching its mapping.
		if _, err := tx.Exec(ctx, upsertDevice, r.Args()...); err != nil {
			return err
		}
		if err := s.step("device"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM walink_lid_map WHERE device = $1`, r.NoisePub); err != nil {
			return err
		}
		if err := s.step("lid_map delete"); err != nil {
			return err
		}
		if d.ID.User != "" && d.LID.User != "" {
			if _, err := tx.Exec(ctx, `INSERT INTO walink_lid_map (device, phone_user, lid_user, lid_server) VALUES ($1, $2, $3, $4)`,
				r.NoisePub, d.ID.User, d.LID.User, d.LID.Server); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteDevice removes the device with its pre-keys and mappings.
func (s *Store) DeleteDevice(ctx context.Context, noisePub keys.PublicKey) error {
	return s.deleteDevice(ctx, noisePub, nil)
}

func (s *Store) deleteDevice(ctx context.Context, noisePub keys.PublicKey, fence *Fence) error {
	pub := noisePub.Bytes()
	return s.writeFenced(ctx, "delete device", fence, func(tx pgx.Tx) error {
		// Lock the device row before its children, the order every writer
		// uses, so a delete racing PutPreKeys cannot deadlock.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM walink_devices WHERE noise_pub = $1 FOR UPDATE`, pub); err != nil {
			return err
		}
		for i, q := range []string{
			`DELETE FROM walink_pre_keys WHERE device = $1`,
			`DELETE FROM walink_lid_map WHERE device = $1`,
			`DELETE FROM walink_devices WHERE noise_pub = $1`,
		} {
			if _, err := tx.Exec(ctx, q, pub); err != nil {
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
	return s.putPreKeys(ctx, noisePub, pks, next, nil)
}

func (s *Store) putPreKeys(ctx context.Context, noisePub keys.PublicKey, pks []keys.PreKey, next uint32, fence *Fence) error {
	// One INSERT … SELECT FROM unnest for the whole batch: one round trip
	// for 812 keys. ON CONFLICT may not touch a row twice in one statement,
	// so repeated ids are folded first, the later winning.
	last := make(map[uint32]int, len(pks))
	for i, pk := range pks {
		if pk.ID == 0 || pk.ID > keys.MaxPreKeyID {
			return fmt.Errorf("%w: pre-key id %d out of range", ErrInvalid, pk.ID)
		}
		if pk.Private.IsZero() || pk.Public.IsZero() {
			return fmt.Errorf("%w: pre-key %d has a zero key", ErrInvalid, pk.ID)
		}
		last[pk.ID] = i
	}
	pub := noisePub.Bytes()
	ids := make([]int64, 0, len(last))
	pubs := make([][]byte, 0, len(last))
	privs := make([][]byte, 0, len(last))
	// The keys' bytes share one buffer rather than two 32-byte copies per
	// key: small garbage of a linking burst pins small size classes' spans
	// (bench/NOTES.md, issue 15).
	raw := make([]byte, 0, 2*keys.Size*len(last))
	for i, pk := range pks {
		if last[pk.ID] != i {
			continue
		}
		ids = append(ids, int64(pk.ID))
		k := pk.Public.Array()
		raw = append(raw, k[:]...)
		pubs = append(pubs, raw[len(raw)-keys.Size:len(raw):len(raw)])
		if s.sec.C == nil {
			k = pk.Private.Array()
			raw = append(raw, k[:]...)
			privs = append(privs, raw[len(raw)-keys.Size:len(raw):len(raw)])
			continue
		}
		// Bytes, not k: k would escape to the Cipher and move to the heap.
		priv, err := s.sec.Seal("pre_keys.priv", pub, pk.ID, pk.Private.Bytes())
		if err != nil {
			return err
		}
		privs = append(privs, priv)
	}
	return s.writeFenced(ctx, "put pre-keys", fence, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE walink_devices SET next_pre_key_id = $1 WHERE noise_pub = $2`, int64(next), pub)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound("put pre-keys: device " + noisePub.String())
		}
		if err := s.step("next"); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO walink_pre_keys (device, id, pub, priv)
			SELECT $1, k.id, k.pub, k.priv FROM unnest($2::bigint[], $3::bytea[], $4::bytea[]) AS k (id, pub, priv)
			ON CONFLICT (device, id) DO UPDATE SET pub = EXCLUDED.pub, priv = EXCLUDED.priv`,
			pub, ids, pubs, privs)
		return err
	})
}

// PreKey returns one stored pre-key.
func (s *Store) PreKey(ctx context.Context, noisePub keys.PublicKey, id uint32) (keys.PreKey, error) {
	var pub, priv []byte
	err := s.pool.QueryRow(ctx, `SELECT pub, priv FROM walink_pre_keys WHERE device = $1 AND id = $2`, noisePub.Bytes(), int64(id)).Scan(&pub, &priv)
	if errors.Is(err, pgx.ErrNoRows) {
		return keys.PreKey{}, notFound(fmt.Sprintf("pre-key %d", id))
	}
	if err != nil {
		return keys.PreKey{}, fail(ctx, "pre-key", err)
	}
	kp, err := s.sec.KeyPair("pre_keys.pub", "pre_keys.priv", noisePub.Bytes(), id, pub, priv)
	if err != nil {
		return keys.PreKey{}, fmt.Errorf("postgres: pre-key %d: %w", id, err)
	}
	if kp.Private.IsZero() {
		return keys.PreKey{}, fmt.Errorf("postgres: pre-key %d: %w: priv is empty", id, ErrCorrupt)
	}
	return keys.PreKey{ID: id, KeyPair: kp}, nil
}

// PreKeyCount returns how many pre-keys the device has (0 for an unknown
// device).
func (s *Store) PreKeyCount(ctx context.Context, noisePub keys.PublicKey) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM walink_pre_keys WHERE device = $1`, noisePub.Bytes()).Scan(&n); err != nil {
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
	err := s.pool.QueryRow(ctx, `SELECT m.lid_user, m.lid_server FROM walink_lid_map m JOIN walink_devices d ON d.noise_pub = m.device
		WHERE m.phone_user = $1 ORDER BY d.seq DESC LIMIT 1`, phone.User).Scan(&user, &server)
	if errors.Is(err, pgx.ErrNoRows) {
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
	return s.write(ctx, "reseal", func(tx pgx.Tx) error {
		// Devices are few: lock, decode and rewrite them all (sealed
		// columns reseal under a fresh nonce, which is harmless).
		rows, err := tx.Query(ctx, selectDevice+` ORDER BY seq FOR UPDATE`)
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
			if _, err := tx.Exec(ctx, upsertDevice, r.Args()...); err != nil {
				return err
			}
		}
		// Pre-keys are many: only those in the clear.
		prows, err := tx.Query(ctx, `SELECT device, id, priv FROM walink_pre_keys WHERE length(priv) = $1`, keys.Size)
		if err != nil {
			return err
		}
		var devices, privs [][]byte
		var ids []int64
		for prows.Next() {
			var dev, priv []byte
			var id int64
			if err := prows.Scan(&dev, &id, &priv); err != nil {
				prows.Close()
				return err
			}
			sealed, err := s.sec.Seal("pre_keys.priv", dev, uint32(id), priv)
			if err != nil {
				prows.Close()
				return err
			}
			devices, ids, privs = append(devices, dev), append(ids, id), append(privs, sealed)
		}
		prows.Close()
		if err := prows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE walink_pre_keys p SET priv = k.priv
			FROM unnest($1::bytea[], $2::bigint[], $3::bytea[]) AS k (device, id, priv)
			WHERE p.device = k.device AND p.id = k.id`, devices, ids, privs)
		return err
	})
}
