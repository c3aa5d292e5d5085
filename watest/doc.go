// Package watest is a local WhatsApp: the server side of the multi-device
// linking protocol over real WebSockets, a virtual primary phone per number,
// and a JSON control API. Tests run it in-process; people run it as
// `walink sim`. It is built on the same sans-IO core as the client
// (noise, binxml, pairing) but takes the other role in each.
//
// # Running
//
//	s, err := watest.Start(ctx, watest.Config{})
//	defer s.Close()
//	// point a client at s.URL(), trusting s.RootKey()
//	dev, err := s.Phone("15551234567").ScanQR(ctx, qrStringFromClient)
//
// [RunSim] is the body of `walink sim`: it starts a server, prints
// {"ws_url", "root_public_key", "control_url", "version_url"} as its first line and
// serves until ctx ends.
//
// # What the server does
//
//   - /ws/chat: connection header, frames and the Noise XX responder
//     (transport.ServerHandshake); the token dictionary is chosen per
//     connection from the header's 4th byte (v3, or v2 for older clients).
//     A registered client may resume with Noise IK (CHANGES-2026 §7, as
//     whatsapp-rust and WA Web do): Scenario.IK "accept" (default) takes a
//     resume made for the server's static key and answers any other with
//     XXfallback; "fallback" always answers with XXfallback, as right after
//     a key rotation; "refuse" closes the connection. The login payload of
//     an accepted resume is decided exactly like an XX login. The node log
//     notes "IK resume" or "XXfallback after an IK resume" on the
//     "handshake done" line.
//     Its certificate chain is its own: root → intermediate (serial 7) →
//     leaf = the server's static key, valid from a day before start for a
//     year. [Server.RootKey] is the root clients must trust.
//   - A registration payload gets pair-device with Scenario.RefCount refs
//     ("2@" + 80 base64 chars); ref i is valid until RefTTLFirst +
//     i×RefTTLNext seconds after pair-device went out. A login payload for a
//     linked device whose Noise static key matches gets success; anything
//     else gets <failure reason="401"/>; a version older than
//     MinClientVersion gets 405. [Server.SetMinClientVersion] (or PUT
//     /config) raises it at any moment: as on WhatsApp, connected devices
//     keep their connection and get 405 at their next login.
//   - /sw.js serves a service-worker script in the real one's shape whose
//     client_revision is Scenario.WebRevision (CHANGES-2026 §8), what
//     clients fetch as the current version (package waversion); 0 makes
//     it 404. [Server.SendClientExpiration] sends
//     <ib><client_expiration t=…/></ib> to a connected device.
//   - The first stanza goes out FirstStanzaDelayMS after the handshake; after
//     a stream error or failure the socket stays open until the client
//     closes it, at most LingerMS (PROTOCOL.md §20.9).
//   - QR pairing ([Phone.ScanQR]): accepts every QR form; with QRRefresh the
//     first scan of a connection sends companion_reg_refresh and only a QR
//     with a new adv secret is accepted afterwards. pair-success carries the
//     ADV identity signed with the phone's account key and HMAC'd with the
//     QR's adv secret; the companion's pair-device-sign reply is verified
//     (device signature over the right bytes, key index) before the device
//     is linked; then <stream:error code="515"/>.
//   - Pair code: companion_hello is validated (number, platform id,
//     "Browser (OS)" display, rate limit → 429 rate-overlimit with backoff;
//     Scenario.PairCodeError forces any of WhatsApp's rejections: 400
//     bad-request, 403 forbidden, 429 rate-overlimit, 452
//     feature-not-available, 500 internal-server-error) and answered with
//     a ref; [Phone.EnterCode] does the primary's stage 2
//     and opens the key bundle from companion_finish; a wrong code fails
//     there (400 to the companion, [ErrWrongCode] to the caller).
//     [Phone.RefreshCode] sends the refresh_code stage.
//   - Passkey ("Shortcake", CHANGES-2026 §6, PASSKEY.md): Scenario.Passkey
//     ("off", "qr", "code", "both"; per phone with [Phone.SetPasskey])
//     gates linking after a QR scan and/or companion_finish. The server
//     sends passkey_prologue_request (Scenario.PasskeyOptions: options
//     inline, left out, or garbled so that the client must fetch them)
//     with real WebAuthn request options (a
//     random 32-byte challenge, rpId whatsapp.com, user verification
//     required, the account's credential allowed) and serves the
//     <passkey_request_options/>, <ref/>, passkey_prologue,
//     companion_nonce and encrypted_pairing_request IQs. Each phone has a
//     P-256 passkey derived from its number ([Phone.Passkey]; [Phone.Assert]
//     stands in for the user's authenticator). The assertion is verified
//     as a relying party does (type webauthn.get, the step's single-use
//     challenge, rpId hash, UP and UV flags, a growing sign counter, the
//     ES256 signature; then the whole WebAuthn §7.2 procedure again with
//     github.com/go-webauthn/webauthn/protocol) and so is the handoff proof, against the adv secret
//     the phone saw; a refusal is 401 not-authorized on the prologue with
//     a node-log line saying why, and the companion may retry until the
//     deadline (Scenario.PasskeyTimeoutMS, default 600 s). Then the phone
//     sends crsc_continuation, checks the commitment, computes the same
//     code, decrypts the pairing request (its Noise key and identity must
//     be the registration's) and, once the code is confirmed (by itself,
//     or with [Phone.ConfirmPasskey] when PasskeyConfirm is "manual"),
//     sends pair-success keyed by the companion's new adv secret. ScanQR
//     and EnterCode return when all of it ends.
//   - After login: pre-key count and upload (checked against the
//     registration: registration id, identity, signed pre-key signature),
//     digest, passive/active, w:p ping, remove-companion-device (logout),
//     and empty answers to the props, blocklist and privacy queries Baileys
//     makes right after login;
//     ib, ack, receipt and presence are accepted silently; any other IQ gets
//     <error code="501" text="feature-not-implemented"/>.
//   - [Phone.Unlink] sends <stream:error code="401"><conflict
//     type="device_removed"/></stream:error> to a connected companion;
//     [Server.Kick] forces 515, 401 or conflict/replaced. A second login of
//     the same device replaces the first connection (conflict/replaced).
//   - The node log ([Server.Events], [Server.AwaitNode], GET /events) holds
//     the last Config.EventLogSize decoded nodes both ways, with secret
//     content redacted and long child lists elided.
//   - Config.StateDir keeps server keys, phones and linked devices in
//     state.json (0600, written atomically), so a restarted server still
//     accepts logins and presents the same root.
//
// # Leniency audit
//
// Every check applied to what a client sends, what happens, and the
// evidence that WhatsApp does the same. "lenient" rows are accepted and
// leave a warning (Config.Logger at Warn, and a "lenient: …" info event in
// the node log). WM = whatsmeow, BL = Baileys, WR = whatsapp-rust; §n =
// PROTOCOL.md, C§n = CHANGES-2026.md.
//
//	check                                  what happens                 evidence
//	-------------------------------------  ---------------------------  ------------------------------------------
//	header not WA 06 02/03                 close, no server hello       necessary: the 4th byte picks the token
//	                                                                    dictionary (§8, §23.2 item 17); no other exists
//	Noise handshake fails / times out      close                        necessary (§3); 20 s as clients (§1)
//	ClientPayload not protobuf             failure 400                  necessary; 400 = generic failure (§18)
//	payload neither login nor registration failure 400                  necessary: nothing to decide on (§6)
//	app version < MinClientVersion         failure 405                  §18, C§8 (off unless the knob is set)
//	registration eIdent not 32 bytes       failure 400                  necessary: the phone signs over it and the
//	                                                                    QR must match it (§12, §20.4)
//	eRegid ≠ 4 B, eKeytype ≠ 05,           lenient: kept as sent        none (BL's 14-bit ids fit any check)
//	eSkeyID ≠ 3 B, eSkeyVal ≠ 32 B,
//	signed pre-key signature bad
//	login: unknown device / noise key      failure 401                  §18, §19, e2e_transcript.json
//	QR unparsable, unknown or expired ref  ScanQR error (phone side)    a phone can only act on a ref it issued (§11)
//	QR noise/identity ≠ registration       ErrQRMismatch                §20.4 (the phone checks both)
//	QR adv secret retired by a refresh     ErrStaleQR                   C§1 ("Couldn't link device")
//	QR with 4 or 5 fields, with or         accepted                     C§2: all forms are in use
//	  without the wa.me prefix
//	pair-device-sign missing, device       not linked, 515              WM's wrong hosted prefix broke linking
//	  signature or signed key index bad                                 (WM #893, #946; §23.2 item 3)
//	pair-device-sign key-index attribute   lenient: linked              none (it repeats the signed value)
//	companion_hello jid not digits@s.wa.n  400 bad-request              codes are routed by phone number (C§4)
//	  number not 7-15 digits / leading 0   lenient: code issued         none: WM checks it client-side only
//	companion_platform_id "0" (UNKNOWN)    400 bad-request              WR: refused by the server (§14.6)
//	  "49", "50"…: char code of an id      lenient: read as that id     BL 6.x sends these and links (§23.2 item 11)
//	  other unknown or empty               lenient: "unknown web        none
//	                                       client: <display>"
//	companion_platform_display not         400 bad-request              WM documents 400 for uncommon values; WR
//	  "Browser (OS)" with a known OS                                    from WA Web (§14.6, C§4)
//	wrapped ephemeral not 80 bytes         lenient: code issued, no     none (WR checks lengths client-side)
//	                                       code opens it later
//	companion_server_auth_key_pub ≠ noise  lenient                      none
//	nonce (00, "0" or anything)            not checked                  clients differ (§23.2 item 1)
//	per-number rate limit (knob)           429 rate-overlimit+backoff   WR from WA Web (§14.3, C§4)
//	a second hello while the phone types   400 bad-request              one flow per number (C§4)
//	companion_finish without a typed code, 400 bad-request              WA Web knows 400 and 500 only here (§14.5)
//	  wrong ref, other identity, bundle
//	  that does not open (wrong code)
//	link_code_companion_reg after login    400 bad-request              kept: no pair-code flow to act on (guess)
//	  or with an unknown stage
//	encrypt / passive IQs before login     lenient: as for an empty     none
//	                                       device (count 0, result)
//	pre-key upload: registration id,       lenient: stored; malformed   none (§15's "should verify" is a
//	  type, identity, skey signature,      keys skipped                 recommendation, not a capture)
//	  malformed keys, no list
//	remove-companion-device without jid    lenient: the device itself   none
//	  with the device's own LID            accepted                     same device (§9)
//	  naming another device                403 forbidden                kept: the lenient reading would unlink
//	                                                                    someone else; no client sends it
//	IQ without id                          no answer                    nothing to reply to (see below)
//	unknown IQ                             501 (see below)              this server serves linking only
//	undecodable frame                      stream:error                 WR recycles on xml-not-well-formed (§18)
//	                                       xml-not-well-formed
//
// # Memory
//
// A linked device is a compact record (keys as fixed arrays, pre-keys
// packed: 32 bytes of public key per key plus id runs, no private parts);
// the node log is a ring of Config.EventLogSize events (`walink sim
// --log-size`), each node elided like its XML, with Config.EventFile
// (`--log FILE`) keeping the full history on disk. bench/NOTES.md has the
// measured cost per linked device.
//
// Package watest/simload (`walink sim load`) links many light companions
// to a running server and keeps them online, to load-test a gateway or the
// server itself.
//
// # Faults
//
// Scenario.Faults make the server misbehave on purpose, to rehearse
// production failures: drop the socket at a named point, delay every
// stanza, send an undecodable frame or an over-long message, present a
// chain under another root or with a foreign leaf key.
//
// # Known differences from the real server
//
//   - Only linking and session bootstrap are served: no messages, receipts,
//     presence, app-state sync, usync, groups, media or calls. Their IQs
//     get 501 (WhatsApp would answer them). Props, blocklist and privacy
//     answers are empty.
//   - No offline-queue stanzas (<ib><offline count/></ib>, dirty bits,
//     edge_routing) after success; its companion_enc_static is a made-up
//     32-byte value (a hash of the device's Noise key; nobody reads it).
//   - The server static key rotates only when told ([Server.RotateKey],
//     POST /server/rotate-key; Scenario.IK "fallback" forces the answer
//     without a rotation), and what WhatsApp puts in the
//     payload of an accepted IK server hello is not documented: this server
//     sends its certificate chain there. The edge-routing pre-intro is
//     accepted and ignored; the server never sends routing info.
//   - The certificate chain is self-minted (own root), so clients must be
//     told to trust [Server.RootKey]; serial numbers are made up.
//   - Server-initiated pings (urn:xmpp:ping) are never sent.
//   - Phone keys, LIDs and ADV raw ids are derived from the phone number;
//     device numbers cycle through 1..255 (skipping linked ones) and key
//     indexes count up from 1 per phone. There is no limit of four linked
//     companions. Accounts are always E2EE (no hosted accounts), and
//     pair-success carries no client-props, encryption-metadata or
//     jurisdiction children.
//   - Pair codes: the display and platform id are checked as the audit
//     above says, but attestation for the Android ids (d/e/f) is not required;
//     limits are only the configured per-number rate limit, answered with
//     429 rate-overlimit (WhatsApp's per-number throttle may come as 400
//     bad-request: rehearse it with PairCodeError 400); there are no
//     per-IP or per-account throttles, and 403/452/500 come only from
//     PairCodeError; the 180 s code lifetime
//     is not enforced server-side; WhatsApp's 60 s auto-refresh of an
//     abandoned primary_hello is not simulated.
//   - Passkey step: the options' values (rpId, timeout, user verification,
//     transports) are the ones CHANGES-2026 §6 and PASSKEY.md report; the
//     relying party refuses what the issue lists (type, challenge, rpId,
//     UP/UV, counter, signature, stale proof) and only logs the origin and
//     a credential_id that differs from rawId, since whether WhatsApp
//     checks them is not known. What WhatsApp answers a refused prologue
//     (401 not-authorized here), how many attempts it allows (5 here), how
//     the phone shows or confirms the code, and whether it accepts a
//     prologue whose ref is not the <ref/> it handed out (accepted here)
//     are not documented. The server never sends a second
//     passkey_prologue_request. Passkey credentials and sign counters live
//     in memory only (not in StateDir).
//   - A refused pair-device-sign reply leaves the device unlinked and ends
//     the stream with 515 (the companion's next login then fails with 401);
//     what WhatsApp sends in that case is not documented.
//   - Every ref of a pair-device is accepted from the moment it went out
//     until its own window ends, so a later ref scanned early is taken;
//     whether WhatsApp refuses that is not documented.
//   - After a logout (remove-companion-device → result) the server sends
//     nothing more and waits for the client to close; whether WhatsApp
//     also ends the stream is not documented.
//   - An IQ without an id gets no answer (there is nothing to put in a
//     reply); what WhatsApp does with one is not documented.
//   - PROTOCOL.md §13/§20.6 suggest an empty result for unknown IQs; this
//     server answers them with 501 feature-not-implemented instead, so a
//     client never mistakes an unserved query for an empty answer.
//   - Pre-key uploads are stored (public parts only) but never handed out,
//     so the count never decreases (nobody fetches bundles); the digest
//     reply carries no key list or hash. The state file keeps the count,
//     not the keys.
//   - Undecodable frames get <stream:error><xml-not-well-formed/>; error
//     codes for malformed payloads (failure 400) are a best guess.
//   - Stanza ids are decimal counters; real ids have the same shape but
//     another origin.
package watest
