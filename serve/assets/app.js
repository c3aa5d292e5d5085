// walink page: the session list, the link view and live updates by SSE.
// No framework, no inline script (the CSP forbids it).
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="walink-csrf"]').content;
  const sim = document.querySelector('meta[name="walink-sim"]').content === "1";
  const $ = (id) => document.getElementById(id);
  const sessions = new Map();
  const passkeyCodes = new Map(); // session id -> the passkey confirmation code (from its event, until the session is fetched again)
  let current = null; // id of the session shown in the link view
  let qrTimer = null, qrExpires = 0, codeExpires = 0;

  async function api(method, path, body) {
    const opt = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) {
      opt.headers["Content-Type"] = "application/json";
      opt.body = JSON.stringify(body);
    }
    const r = await fetch(path, opt);
    if (r.status === 401) { location.reload(); throw new Error("signed out"); }
    const ct = r.headers.get("Content-Type") || "";
    const data = ct.includes("json") ? await r.json() : null;
    if (!r.ok) { const e = new Error((data && (data.detail || data.title)) || r.statusText); e.problem = data; throw e; }
    return data;
  }

  const statusText = {
    starting: "Connecting…", scan_qr: "Waiting for the QR code to be scanned", pair_code: "Waiting for the code to be typed on the phone",
    passkey_required: "Passkey needed", passkey_confirm: "Confirm on your phone", connected: "Linked and online",
    disconnected: "Not connected", logged_out: "Logged out", failed: "Failed",
  };

  function render() {
    const ul = $("sessions");
    ul.textContent = "";
    const list = [...sessions.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
    $("empty").hidden = list.length > 0;
    for (const s of list) {
      const li = document.createElement("li");
      li.dataset.id = s.id;
      const left = document.createElement("div");
      const name = document.createElement("strong");
      name.textContent = s.name;
      const badge = document.createElement("span");
      badge.className = "badge " + s.status;
      badge.textContent = s.status.replace("_", " ");
      badge.setAttribute("aria-label", "status: " + statusText[s.status]);
      left.append(name, " ", badge);
      if (s.phone) left.append(" +" + s.phone);
      const acts = document.createElement("div");
      acts.className = "actions";
      const btn = (label, cls, fn) => { const b = document.createElement("button"); b.type = "button"; b.textContent = label; if (cls) b.className = cls; b.addEventListener("click", fn); acts.append(b); return b; };
      btn("Open", "secondary", () => show(s.id));
      if (s.running) btn("Stop", "secondary", () => act(() => api("POST", `/v1/sessions/${s.id}/stop`)));
      else btn("Start", "secondary", () => act(() => api("POST", `/v1/sessions/${s.id}/start`).then(() => show(s.id))));
      if (s.device) btn("Log out", "danger", () => confirmThen(`Log out ${s.name} (+${s.phone})? The phone will no longer list this device.`, () => act(() => api("POST", `/v1/sessions/${s.id}/logout`))));
      btn("Delete", "danger", () => confirmThen(`Delete ${s.name}? ${s.device ? "It is logged out first." : ""}`, () => act(() => api("DELETE", `/v1/sessions/${s.id}`).then(() => { sessions.delete(s.id); if (current === s.id) hideLink(); render(); }))));
      li.append(left, acts);
      ul.append(li);
    }
    if (current) renderLink();
  }

  async function act(fn) {
    try { const v = await fn(); if (v && v.id) { sessions.set(v.id, v); render(); } } catch (e) { alertMsg(e.message); }
  }
  function alertMsg(m) { $("link-status").textContent = m; }

  function confirmThen(text, fn) {
    const d = $("confirm");
    $("confirm-text").textContent = text;
    d.returnValue = "";
    d.addEventListener("close", function once() { d.removeEventListener("close", once); if (d.returnValue === "ok") fn(); });
    d.showModal();
    $("confirm-cancel").focus();
  }

  function show(id) { current = id; $("link").hidden = false; renderLink(); $("link-h").scrollIntoView({ block: "nearest" }); }
  function hideLink() { current = null; $("link").hidden = true; }

  function setQR(s) {
    const img = $("qr-img");
    const src = `/v1/sessions/${s.id}/qr?format=png&v=${encodeURIComponent(s.qr ? s.qr.expires_at : Date.now())}`;
    if (img.dataset.src !== src) { img.dataset.src = src; img.src = src; }
    qrExpires = s.qr ? Date.parse(s.qr.expires_at) : 0;
  }

  function renderLink() {
    const s = sessions.get(current);
    if (!s) { hideLink(); return; }
    $("link-name").textContent = s.name;
    $("link-status").textContent = statusText[s.status] + (s.reason ? ` (${s.reason})` : "");
    $("qr-view").hidden = s.status !== "scan_qr";
    $("code-view").hidden = s.status !== "pair_code";
    $("passkey-view").hidden = !(s.status === "passkey_required" || s.status === "passkey_confirm");
    $("passkey-go").hidden = s.status !== "passkey_required";
    $("passkey-confirm-view").hidden = s.status !== "passkey_confirm";
    $("passkey-code").textContent = (s.passkey && s.passkey.code) || passkeyCodes.get(s.id) || ""; // the session keeps it across reloads
    $("linked-view").hidden = s.status !== "connected";
    $("failed-view").hidden = !(s.status === "failed" || s.status === "logged_out" || (s.status === "disconnected" && !s.device));
    $("sim-panel").hidden = !sim || !(s.status === "scan_qr" || s.status === "pair_code");
    $("sim-scan").hidden = s.status !== "scan_qr";
    $("sim-type").hidden = s.status !== "pair_code";
    if (s.status === "scan_qr") setQR(s);
    if (s.status === "pair_code" && s.pair_code) { $("pair-code").textContent = s.pair_code.code.slice(0, 4) + "-" + s.pair_code.code.slice(4); codeExpires = Date.parse(s.pair_code.expires_at); }
    if (s.status === "connected") { $("linked-phone").textContent = "+" + s.phone; $("linked-platform").textContent = s.platform ? ` (phone: ${s.platform})` : ""; }
    if (!$("failed-view").hidden) $("failed-reason").textContent = statusText[s.status] + (s.reason ? ": " + s.reason : "");
  }

  function tick() {
    const now = Date.now();
    if (qrExpires) { const left = Math.max(0, Math.round((qrExpires - now) / 1000)); $("qr-countdown").textContent = `This one is valid for ${left} s.`; }
    if (codeExpires) { const left = Math.max(0, Math.round((codeExpires - now) / 1000)); $("code-countdown").textContent = `The code is valid for ${left} s.`; }
  }

  async function refresh(id) {
    try { const v = await api("GET", `/v1/sessions/${id}`); sessions.set(id, v); } catch (e) { if (e.problem && e.problem.status === 404) sessions.delete(id); }
    render();
  }

  function listen() {
    const es = new EventSource("/v1/events");
    es.onmessage = null;
    const names = ["status", "pairing_qr_code", "pairing_code", "pair_success", "connected", "disconnected", "logged_out", "session_created", "session_deleted", "qr_codes_expired", "pair_error", "passkey_required", "passkey_confirm", "pair_passkey_error"];
    for (const n of names) es.addEventListener(n, (ev) => {
      const d = JSON.parse(ev.data);
      // The confirmation code is only in the event: keep it for the view.
      if (n === "passkey_confirm" && d.code) passkeyCodes.set(d.session_id, d.code);
      if (n === "session_deleted") { sessions.delete(d.session_id); render(); return; }
      refresh(d.session_id);
    });
  }

  $("new-session").addEventListener("click", () => act(async () => {
    const v = await api("POST", "/v1/sessions", {});
    sessions.set(v.id, v); show(v.id); return v;
  }));
  $("close-link").addEventListener("click", hideLink);
  $("retry").addEventListener("click", () => act(() => api("POST", `/v1/sessions/${current}/start`)));
  $("code-form").addEventListener("submit", (e) => {
    e.preventDefault();
    $("code-error").hidden = true;
    api("POST", `/v1/sessions/${current}/pair-code`, { phone: $("code-phone").value, push: $("code-push").checked })
      .then((r) => { $("pair-code").textContent = r.code.slice(0, 4) + "-" + r.code.slice(4); codeExpires = Date.parse(r.expires_at); refresh(current); })
      .catch((err) => { $("code-error").textContent = err.message; $("code-error").hidden = false; });
  });
  $("passkey-go").addEventListener("click", async () => {
    try {
      const o = await api("GET", `/v1/sessions/${current}/passkey`);
      const pk = o.public_key;
      const b64 = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
      pk.challenge = b64(pk.challenge);
      if (pk.allowCredentials) pk.allowCredentials.forEach((c) => (c.id = b64(c.id)));
      const cred = await navigator.credentials.get({ publicKey: pk });
      const enc = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      await api("POST", `/v1/sessions/${current}/passkey/response`, { id: cred.id, rawId: enc(cred.rawId), type: cred.type,
        response: { clientDataJSON: enc(cred.response.clientDataJSON), authenticatorData: enc(cred.response.authenticatorData), signature: enc(cred.response.signature), userHandle: cred.response.userHandle ? enc(cred.response.userHandle) : null } });
    } catch (e) { $("passkey-error").textContent = e.message; $("passkey-error").hidden = false; }
  });
  $("passkey-confirm").addEventListener("click", () => {
    $("passkey-error").hidden = true;
    api("POST", `/v1/sessions/${current}/passkey/confirm`).then(() => refresh(current))
      .catch((e) => { $("passkey-error").textContent = e.message; $("passkey-error").hidden = false; });
  });
  $("sim-scan").addEventListener("click", () => { $("sim-msg").textContent = "Scanning…"; api("POST", `/v1/sessions/${current}/sim/scan`, { phone: $("sim-phone").value }).then(() => ($("sim-msg").textContent = "Scanned.")).catch((e) => ($("sim-msg").textContent = e.message)); });
  $("sim-type").addEventListener("click", () => { $("sim-msg").textContent = "Typing the code…"; api("POST", `/v1/sessions/${current}/sim/enter-code`, { phone: $("sim-phone").value }).then(() => ($("sim-msg").textContent = "Code entered.")).catch((e) => ($("sim-msg").textContent = e.message)); });

  listen();
  api("GET", "/v1/sessions").then((r) => { for (const s of r.sessions) sessions.set(s.id, s); render(); });
  qrTimer = setInterval(tick, 1000);
})();
