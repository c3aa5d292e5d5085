package watest

import (
	"fmt"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
)

// Provision links a companion to the phone without a pairing
// conversation, as if it had paired earlier: from now on a login with
// noise (and the returned JID) gets success. It is for benchmarks and
// load tests that measure logins and reconnects, not linking; the
// identity and signed pre-key are recorded as a registration would, but
// nothing is signed (no pair-success exists for such a device).
func (p *Phone) Provision(noise, identity keys.PublicKey, regID uint32, spk keys.SignedPreKey) (jid.JID, error) {
	s := p.srv
	s.mu.Lock()
	device, ok := p.reserveDeviceLocked()
	if !ok {
		s.mu.Unlock()
		return jid.JID{}, ErrTooManyDevices
	}
	delete(p.reserved, device)
	keyIndex := p.nextKeyIndex
	p.nextKeyIndex++
	p.devices[device] = &linkedDevice{
		device: device, keyIndex: keyIndex, noise: noise, identity: identity,
		regID: regID, skeyID: spk.ID, skey: spk.Public, skeySig: spk.Signature[:],
		platform: "Chrome (Linux)", linkedAt: s.now(),
	}
	s.mu.Unlock()
	s.save()
	me := jid.NewAD(p.number, device, jid.DefaultUserServer)
	s.info(0, fmt.Sprintf("provisioned %s (no pairing)", me))
	return me, nil
}
