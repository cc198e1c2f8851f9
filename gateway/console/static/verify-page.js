// The entry page's check, in the auditor's browser: runs verify.js on the data the page
// carries and shows what was checked. The server's own opinion is never shown as
// "verified": only this check, against a directory key the auditor confirmed.
//
// Trust in the directory key: the page offers the key this node holds. The first time, the
// browser shows its fingerprint (computed here) for the auditor to compare with the printed
// fingerprint the consortium hands out (`gateway pki fingerprint`), and keeps it in
// localStorage once confirmed. Later pages are verified only against the confirmed key; a
// page offering another key is flagged, not verified.

import { b64decode, keyFingerprint, verifyEntry } from "./verify.js";

const PIN_PREFIX = "gateway.directory-key.";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) node.append(child);
  return node;
}

function pinned(consortium) {
  try {
    return JSON.parse(localStorage.getItem(PIN_PREFIX + consortium) || "null");
  } catch {
    return null;
  }
}

function render(out, data, result, fingerprint, pin) {
  const t = data.text;
  const confirmed = pin && pin.key === data.directoryKey;
  let verdict;
  if (pin && !confirmed) {
    verdict = el("p", { class: "verdict bad", id: "verdict", "data-state": "key-changed" }, "✗ " + t.key_changed);
  } else if (!result.ok) {
    verdict = el("p", { class: "verdict bad", id: "verdict", "data-state": "failed" }, "✗ " + t.not_verified + ": " + result.error);
  } else if (!confirmed) {
    verdict = el("p", { class: "verdict warn", id: "verdict", "data-state": "unconfirmed" }, "⚠ " + t.unconfirmed);
  } else {
    verdict = el("p", { class: "verdict ok", id: "verdict", "data-state": "verified" }, "✓ " + t.verified);
  }
  const checks = el("ul", { class: "checks", id: "checks" });
  for (const c of result.checks) {
    checks.append(el("li", { "data-ok": String(c.ok) }, (c.ok ? "✓ " : "✗ ") + (t[c.what] || c.what) + ": " + c.detail));
  }
  const cosigners = result.cosigners.length
    ? el("p", { id: "cosigners" }, t.cosigned_by + ": " + result.cosigners.map((c) => `${c.nodeId} (${c.agency}, ${new Date(c.time * 1000).toISOString()})`).join(", "))
    : el("p", { id: "cosigners", class: "muted" }, t.no_cosigners);
  const key = el("p", {}, (confirmed ? t.confirmed_on : t.compare) + " ", el("span", { class: "fingerprint", id: "fingerprint" }, fingerprint));
  out.replaceChildren(verdict, checks, cosigners, key);
  if (!confirmed && result.ok) {
    const button = el("button", { type: "button", id: "confirm-key" }, t.confirm);
    button.addEventListener("click", () => {
      localStorage.setItem(PIN_PREFIX + data.consortium, JSON.stringify({ key: data.directoryKey, at: new Date().toISOString() }));
      run();
    });
    out.append(el("p", {}, button));
  }
  if (result.ok && confirmed) {
    const text = new TextDecoder().decode(b64decode(data.leaf, "entry"));
    out.append(el("h3", {}, t.entry_text), el("pre", { class: "mono proof", id: "verified-entry", tabindex: "0" }, text));
  }
}

async function run() {
  const out = document.getElementById("verification");
  const data = JSON.parse(document.getElementById("proof-data").textContent);
  out.replaceChildren(el("p", { class: "muted" }, data.text.checking));
  if (!globalThis.crypto?.subtle) {
    out.replaceChildren(el("p", { class: "verdict bad", id: "verdict", "data-state": "failed" }, "✗ " + data.text.no_webcrypto));
    return;
  }
  const pin = pinned(data.consortium);
  const offered = b64decode(data.directoryKey, "directory key");
  // Verified against the confirmed key when there is one, never against the page's word.
  const trusted = pin ? b64decode(pin.key, "confirmed directory key") : offered;
  const d = (s) => b64decode(s, "page data");
  const result = await verifyEntry({
    index: data.index,
    leaf: d(data.leaf),
    tlogProof: data.tlogProof,
    directory: d(data.directory),
    directorySignature: d(data.directorySignature),
    directoryKey: trusted,
    brokerId: data.brokerId,
  });
  render(out, data, result, await keyFingerprint(offered), pin);
}

run().catch((e) => {
  const out = document.getElementById("verification");
  out.replaceChildren(el("p", { class: "verdict bad", id: "verdict", "data-state": "failed" }, "✗ " + e));
});
