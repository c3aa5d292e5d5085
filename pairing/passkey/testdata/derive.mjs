// Independent computation of the passkey ("Shortcake") derivations, written
// from the text of shared/protocol/PASSKEY.md §5 and §7 with Node's own
// crypto (no walink code). It prints vectors.json:
//
//	node derive.mjs > vectors.json
//
// "worked_example" re-derives the values of PASSKEY.md §9 from its inputs;
// "fresh" uses inputs made here (SHA-256 of fixed labels), so the Go code is
// also checked on values nobody has seen it produce. The protobufs are
// encoded by hand from the field table (§5): tag bytes, lengths, fields in
// number order, deviceType present even when 0.
import crypto from 'node:crypto';

const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => Buffer.from(s, 'hex');
const sha256 = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();
const hkdf = (ikm, salt, info) => Buffer.from(crypto.hkdfSync('sha256', ikm, salt, Buffer.from(info, 'utf8'), 32));
const hmac = (key, msg) => crypto.createHmac('sha256', key).update(msg).digest();

// X25519 from raw 32-byte keys via PKCS#8 / SPKI wrappers (RFC 8410).
const x25519priv = (raw) => crypto.createPrivateKey({ key: Buffer.concat([unhex('302e020100300506032b656e04220420'), raw]), format: 'der', type: 'pkcs8' });
const x25519pubOf = (raw) => crypto.createPublicKey(x25519priv(raw)).export({ format: 'der', type: 'spki' }).subarray(12);
const x25519 = (privRaw, pubRaw) => crypto.diffieHellman({
  privateKey: x25519priv(privRaw),
  publicKey: crypto.createPublicKey({ key: Buffer.concat([unhex('302a300506032b656e032100'), pubRaw]), format: 'der', type: 'spki' }),
});

// Protobuf by hand: varint, length-delimited field.
const varint = (n) => { const out = []; do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n); return Buffer.from(out); };
const ld = (field, bytes) => Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
const vi = (field, n) => Buffer.concat([varint((field << 3) | 0), varint(n)]);

const companionIdentity = (pub, deviceType, ref) => Buffer.concat([ld(1, pub), vi(2, deviceType), ld(3, Buffer.from(ref, 'utf8'))]);
const prologuePayload = (ident, hash) => Buffer.concat([ld(1, ident), ld(2, ld(1, hash))]);
const pairingRequest = (noise, identity, adv) => Buffer.concat([ld(1, noise), ld(2, identity), ld(3, adv)]);
const encryptedPairingRequest = (payload, iv) => Buffer.concat([ld(1, payload), ld(2, iv)]);

// §7.7: RFC 4648 base32 bit order over 5 bytes, alphabet without 0 I O U.
const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTVWXYZ';
function code(companionNonce, primaryPub, primaryNonce) {
  const d = sha256(companionNonce, primaryPub);
  let v = 0n;
  for (let i = 0; i < 5; i++) v = (v << 8n) | BigInt(primaryNonce[i] ^ d[i]);
  let s = '';
  for (let i = 7; i >= 0; i--) s += ALPHABET[Number((v >> BigInt(5 * i)) & 31n)];
  return s.slice(0, 4) + '-' + s.slice(4);
}
const salt = (deviceType, ref) => `Companion Pairing ${deviceType} with ref ${ref}`;
const handoffKey = (adv) => hkdf(adv, Buffer.alloc(0), 'shortcake-passkey-handoff-v1');
const encKey = (ss, deviceType, ref) => hkdf(ss, Buffer.from(salt(deviceType, ref), 'utf8'), 'Pairing Information Encryption Key');

function gcmSeal(key, iv, plain) {
  const c = crypto.createCipheriv('aes-256-gcm', key, iv);
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}
function gcmOpen(key, iv, ct) {
  const d = crypto.createDecipheriv('aes-256-gcm', key, iv);
  d.setAuthTag(ct.subarray(ct.length - 16));
  return Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
}

// Worked example, PASSKEY.md §9 (inputs copied from the text).
const W = {
  companion_nonce: 'f71aae2a6873cf7515fcbf5d19bac63453c01747e0bdbfd460b7bb585f862cd1',
  primary_public: 'eaea75081f0c661a4216c92243b562bcede90dadbd4f4c9d452d87e7e76dab44',
  primary_nonce: 'bcb1b8fdc4aa9223d06e3fe288529a33ff6f0061e755d265f4cfe84c20e91892',
  qr_adv_secret: '684d33cbb76852c4a58e89274457b8f74e916304aa3744b8edb50f646703dba3',
  prologue_payload: '0a3b0a20d7aabfbb7edb311047162864d92c05a8824cb017ffa5a79bb686a7502c9a550410001a153240706b726566322d35313764373036656461376612220a209bb6a0eab5a138d04ed4639452fe1acd28987158ba6e4ebb3b7362df5a9c7123',
  primary_private: '303a0c975d671bba036d35429c1c742942f71e30e061e9800d0675f6a7fb4e47',
  companion_public: 'd7aabfbb7edb311047162864d92c05a8824cb017ffa5a79bb686a7502c9a5504',
  device_type: 0,
  ref: '2@pkref2-517d706eda7f',
  iv: '5b303635695485e9bf9d69c5',
  encrypted_payload: '6130e364e2106736fb2b693bf0e50f0216f4cef6b3df98528717e7731a3600fa05517e7592568d66223c48132bba5ac030d1ce29b66d9c5a19a298affa5467b489faedf31c69059d5e1d0123d6d0e70608649c82171e8a089e1fe3dca8362fea2201a96be94dadea7a5e009ceb7106f14f17265fdebe',
};
{
  const pro = unhex(W.prologue_payload);
  const ident = pro.subarray(2, 61); // field 1: 0a 3b then 59 bytes
  W.commitment = hex(sha256(ident, unhex(W.companion_nonce)));
  W.identity_bytes = hex(ident);
  W.code = code(unhex(W.companion_nonce), unhex(W.primary_public), unhex(W.primary_nonce));
  W.handoff_key = hex(handoffKey(unhex(W.qr_adv_secret)));
  W.handoff_proof = hex(hmac(handoffKey(unhex(W.qr_adv_secret)), pro));
  W.salt = salt(W.device_type, W.ref);
  W.shared_secret = hex(x25519(unhex(W.primary_private), unhex(W.companion_public)));
  W.key = hex(encKey(unhex(W.shared_secret), W.device_type, W.ref));
  W.pairing_request = hex(gcmOpen(unhex(W.key), unhex(W.iv), unhex(W.encrypted_payload)));
}

// Fresh vector: every input from SHA-256 of a label.
const L = (s) => sha256(Buffer.from('walink passkey vector ' + s, 'utf8'));
const F = {};
{
  const cPriv = L('companion ephemeral'), pPriv = L('primary ephemeral');
  F.companion_private = hex(cPriv);
  F.primary_private = hex(pPriv);
  F.companion_public = hex(x25519pubOf(cPriv));
  F.primary_public = hex(x25519pubOf(pPriv));
  F.companion_nonce = hex(L('companion nonce'));
  F.primary_nonce = hex(L('primary nonce'));
  F.adv_secret_shown = hex(L('adv secret shown'));
  F.adv_secret_new = hex(L('adv secret new'));
  F.noise_public = hex(L('noise public'));
  F.identity_public = hex(L('identity public'));
  F.iv = hex(L('iv').subarray(0, 12));
  F.device_type = 1; // CHROME
  F.ref = '2@' + L('ref').toString('base64');
  const ident = companionIdentity(unhex(F.companion_public), F.device_type, F.ref);
  F.identity_bytes = hex(ident);
  F.commitment = hex(sha256(ident, unhex(F.companion_nonce)));
  F.prologue_payload = hex(prologuePayload(ident, unhex(F.commitment)));
  F.handoff_key = hex(handoffKey(unhex(F.adv_secret_shown)));
  F.handoff_proof = hex(hmac(unhex(F.handoff_key), unhex(F.prologue_payload)));
  F.code = code(unhex(F.companion_nonce), unhex(F.primary_public), unhex(F.primary_nonce));
  F.salt = salt(F.device_type, F.ref);
  const ss1 = x25519(cPriv, unhex(F.primary_public)), ss2 = x25519(pPriv, unhex(F.companion_public));
  if (!ss1.equals(ss2)) throw new Error('x25519 sides differ');
  F.shared_secret = hex(ss1);
  F.key = hex(encKey(ss1, F.device_type, F.ref));
  F.primary_identity = hex(Buffer.concat([ld(1, unhex(F.primary_public)), ld(2, unhex(F.primary_nonce))]));
  F.pairing_request = hex(pairingRequest(unhex(F.noise_public), unhex(F.identity_public), unhex(F.adv_secret_new)));
  F.encrypted_pairing_request = hex(encryptedPairingRequest(gcmSeal(unhex(F.key), unhex(F.iv), unhex(F.pairing_request)), unhex(F.iv)));
}

process.stdout.write(JSON.stringify({
  how: 'node derive.mjs (Node ' + process.version + ' crypto; written from PASSKEY.md §5/§7, not from walink code)',
  worked_example: W,
  fresh: F,
}, null, 2) + '\n');
