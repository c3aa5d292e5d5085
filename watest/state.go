package watest

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/walinkdev/walink/keys"
)

// stateFileName is the file in Config.StateDir.
const stateFileName = "state.json"

// stateFile is the persisted server: its keys (so clients keep trusting the
// same root) and every phone's linked devices. Written atomically, 0600.
type stateFile struct {
	Version      int          `json:"version"`
	Root         string       `json:"root_private"`
	Intermediate string       `json:"intermediate_private"`
	Static       string       `json:"static_private"`
	Phones       []phoneState `json:"phones"`
}

type phoneState struct {
	Number       string        `json:"number"`
	NextDevice   uint16        `json:"next_device"`
	NextKeyIndex uint32        `json:"next_key_index"`
	Devices      []deviceState `json:"devices"`
}

type deviceState struct {
	Device   uint16    `json:"device"`
	KeyIndex uint32    `json:"key_index"`
	Noise    string    `json:"noise_pub"`
	Identity string    `json:"identity_pub"`
	RegID    uint32    `json:"registration_id"`
	SkeyID   uint32    `json:"signed_prekey_id"`
	Skey     string    `json:"signed_prekey_pub"`
	SkeySig  string    `json:"signed_prekey_sig"`
	Platform string    `json:"platform"`
	LinkedAt time.Time `json:"linked_at"`
	PreKeys  int       `json:"prekeys"`
}

// loadOrInitKeys loads the state file if there is one, else makes fresh
// server keys (and writes them when a state dir is set).
func (s *Server) loadOrInitKeys() error {
	if s.stateDir != "" {
		b, err := os.ReadFile(filepath.Join(s.stateDir, stateFileName))
		switch {
		case err == nil:
			return s.loadState(b)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("watest: read state: %w", err)
		}
	}
	for _, kp := range []*keys.KeyPair{&s.root, &s.intermediate, &s.static} {
		k, err := keys.NewKeyPair(s.rand)
		if err != nil {
			return fmt.Errorf("watest: server keys: %w", err)
		}
		*kp = k
	}
	if s.stateDir != "" {
		return s.saveErr()
	}
	return nil
}

func (s *Server) loadState(b []byte) error {
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("watest: parse state: %w", err)
	}
	bad := func(what string, err error) error { return fmt.Errorf("watest: parse state: %s: %w", what, err) }
	for _, k := range []struct {
		hex string
		kp  *keys.KeyPair
	}{{st.Root, &s.root}, {st.Intermediate, &s.intermediate}, {st.Static, &s.static}} {
		raw, err := hex.DecodeString(k.hex)
		if err != nil {
			return bad("server key", err)
		}
		if *k.kp, err = keys.KeyPairFromPrivate(raw); err != nil {
			return bad("server key", err)
		}
	}
	for _, ps := range st.Phones {
		p := newPhone(s, ps.Number)
		p.nextDevice, p.nextKeyIndex = ps.NextDevice, ps.NextKeyIndex
		for _, ds := range ps.Devices {
			d := &linkedDevice{device: ds.Device, keyIndex: ds.KeyIndex, regID: ds.RegID, skeyID: ds.SkeyID,
				platform: ds.Platform, linkedAt: ds.LinkedAt, preKeys: preKeyStore{restored: ds.PreKeys}}
			var err error
			if d.noise, err = pubFromHex(ds.Noise); err != nil {
				return bad("device noise key", err)
			}
			if d.identity, err = pubFromHex(ds.Identity); err != nil {
				return bad("device identity", err)
			}
			if d.skey, err = pubFromHex(ds.Skey); err != nil {
				return bad("device signed pre-key", err)
			}
			if d.skeySig, err = hex.DecodeString(ds.SkeySig); err != nil {
				return bad("device signed pre-key signature", err)
			}
			p.devices[d.device] = d
		}
		s.phones[p.number] = p
	}
	return nil
}

func pubFromHex(h string) (keys.PublicKey, error) {
	raw, err := hex.DecodeString(h)
	if err != nil {
		return keys.PublicKey{}, err
	}
	return keys.PublicKeyFromBytes(raw)
}

// save writes the state file if a state dir is configured; failures are
// logged (the in-memory state stays authoritative).
func (s *Server) save() {
	if err := s.saveErr(); err != nil {
		s.log.Error("watest: save state", "err", err)
	}
}

func (s *Server) saveErr() error {
	if s.stateDir == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	st := stateFile{
		Version:      1,
		Root:         hex.EncodeToString(s.root.Private.Bytes()),
		Intermediate: hex.EncodeToString(s.intermediate.Private.Bytes()),
	}
	s.mu.Lock()
	st.Static = hex.EncodeToString(s.static.Private.Bytes()) // RotateKey writes it under s.mu
	for _, p := range s.phones {
		ps := phoneState{Number: p.number, NextDevice: p.nextDevice, NextKeyIndex: p.nextKeyIndex}
		for _, d := range p.devices {
			ps.Devices = append(ps.Devices, deviceState{
				Device: d.device, KeyIndex: d.keyIndex, Noise: d.noise.String(), Identity: d.identity.String(),
				RegID: d.regID, SkeyID: d.skeyID, Skey: d.skey.String(), SkeySig: hex.EncodeToString(d.skeySig),
				Platform: d.platform, LinkedAt: d.linkedAt, PreKeys: d.preKeys.count(),
			})
		}
		sort.Slice(ps.Devices, func(i, j int) bool { return ps.Devices[i].Device < ps.Devices[j].Device })
		st.Phones = append(st.Phones, ps)
	}
	s.mu.Unlock()
	sort.Slice(st.Phones, func(i, j int) bool { return st.Phones[i].Number < st.Phones[j].Number })
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("watest: encode state: %w", err)
	}
	return writeFileAtomic(filepath.Join(s.stateDir, stateFileName), b)
}

// writeFileAtomic writes via a temporary file and a rename, so a crash
// leaves the old file or the new one, never half of one.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("watest: state dir: %w", err)
	}
	f, err := os.CreateTemp(dir, ".state-*.tmp")
	if err != nil {
		return fmt.Errorf("watest: write state: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("watest: write state: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("watest: write state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("watest: write state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("watest: write state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("watest: write state: %w", err)
	}
	return nil
}
