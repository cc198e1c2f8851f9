// The auditor's own check of one audit entry, run in the auditor's browser.
//
// The node that serves the console is not trusted to say "verified": this module takes
// the entry's exact leaf bytes, its C2SP tlog-proof and the signed membership directory,
// and checks them itself with WebCrypto (SHA-256, Ed25519) against the consortium's
// directory key, which the page must not be the only source of (see verify-page.js).
//
// Formats, as in gateway/audit and gateway/pki:
//  - RFC 9162 section 2.1: leaf hash SHA-256(0x00 || leaf), node hash SHA-256(0x01 || l || r),
//    inclusion proof verification per section 2.1.3.2 (transparency-dev/merkle's verify.go).
//  - C2SP signed-note v1.0.0: text, a blank line, "— <name> base64(keyID || sig)" lines;
//    key ID = SHA-256(name || 0x0A || type || key)[:4]; Ed25519 type 0x01.
//  - C2SP tlog-cosignature v1: type 0x04, signature = u64 timestamp || Ed25519 over
//    "cosignature/v1\ntime <t>\n" || checkpoint text.
//  - C2SP tlog-checkpoint: origin, decimal size, base64 root hash, extension lines.
//  - C2SP tlog-proof v1: header, optional "extra", "index <n>", hashes, blank line, note.
//  - The signed directory: Ed25519 by the directory key over the exact canonical JSON
//    bytes; the log key is the broker member's sign_key under the key name
//    "<consortium>/gateway-audit"; a member's witness key is its sign_key under
//    "<consortium>/witness/<node_id>".
//
// Every function that can fail throws VerifyError with a sentence naming what failed.

export class VerifyError extends Error {
  constructor(message) {
    super(message);
    this.name = "VerifyError";
  }
}

const HASH_SIZE = 32;
const MAX_UINT64 = (1n << 64n) - 1n;
const MAX_SIGNATURES = 100;
const MAX_PROOF_HASHES = 64;
export const SIG_TYPE_ED25519 = 0x01;
export const SIG_TYPE_COSIGNATURE_V1 = 0x04;
export const TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1";
const SIG_PREFIX = "\u2014 ";
const NOTE_CONTROL = /[\x00-\x09\x0b-\x1f]/;
const LINE_CONTROL = /[\x00-\x1f]/;
const DECIMAL = /^(0|[1-9][0-9]*)$/;
const HEX8 = /^[0-9a-f]{8}$/;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

// ---------------------------------------------------------------- bytes

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function b64encode(bytes) {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

/** Standard, padded, canonical base64 (one spelling per value), else VerifyError. */
export function b64decode(text, what) {
  if (typeof text !== "string" || text.length % 4 !== 0 || !B64.test(text)) {
    throw new VerifyError(`${what} is not valid base64`);
  }
  let raw;
  try {
    raw = atob(text);
  } catch {
    throw new VerifyError(`${what} is not valid base64`);
  }
  const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  if (b64encode(bytes) !== text) throw new VerifyError(`${what} is not canonical base64`);
  return bytes;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// ---------------------------------------------------------------- RFC 9162 Merkle tree

/** RFC 9162 2.1.1: the hash of a leaf's data. */
export async function leafHash(data) {
  return sha256(concat(Uint8Array.of(0), data));
}

/** RFC 9162 2.1.1: the hash of an interior node. */
export async function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

function bitLength(n) {
  return n === 0n ? 0 : n.toString(2).length;
}

function bitCount(n) {
  let count = 0;
  for (const c of n.toString(2)) if (c === "1") count++;
  return count;
}

function checkHash(value, what) {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    throw new VerifyError(`${what} is ${value?.length ?? 0} bytes, want ${HASH_SIZE}`);
  }
}

/** Number of hashes in a valid inclusion proof for leaf `index` of a tree of `size`. */
export function inclusionProofSize(index, size) {
  index = BigInt(index);
  size = BigInt(size);
  if (!(0n <= index && index < size)) {
    throw new VerifyError(`leaf index ${index} is not below tree size ${size}`);
  }
  const inner = bitLength(index ^ (size - 1n));
  return inner + bitCount(index >> BigInt(inner));
}

/** The root an inclusion proof leads to: RFC 9162 2.1.3.2 steps 1-4. */
export async function rootFromInclusionProof(leaf, index, size, proof) {
  index = BigInt(index);
  size = BigInt(size);
  if (index < 0n || size < 0n) throw new VerifyError("negative leaf index or tree size");
  if (index >= size) throw new VerifyError(`leaf index ${index} is not below tree size ${size}`);
  checkHash(leaf, "leaf hash");
  const want = inclusionProofSize(index, size);
  if (proof.length !== want) {
    throw new VerifyError(
      `inclusion proof has ${proof.length} hashes, want ${want} for leaf ${index} in a tree of size ${size}`,
    );
  }
  proof.forEach((p, i) => checkHash(p, `proof[${i}]`));
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new VerifyError("inclusion proof is longer than the path to the root");
    if (fn & 1n || fn === sn) {
      r = await nodeHash(p, r);
      if (!(fn & 1n)) {
        while (fn && !(fn & 1n)) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new VerifyError("inclusion proof is shorter than the path to the root");
  return r;
}

/** Throws unless `leaf` is leaf `index` of the tree of `size` whose root is `root`. */
export async function verifyInclusion(leaf, index, size, proof, root) {
  const calculated = await rootFromInclusionProof(leaf, index, size, proof);
  checkHash(root, "root hash");
  if (!bytesEqual(calculated, root)) {
    throw new VerifyError(
      `inclusion proof for leaf ${index} in a tree of size ${size} does not lead to the signed root hash`,
    );
  }
}

// ---------------------------------------------------------------- C2SP signed notes

function validKeyName(name) {
  return name.length > 0 && !name.includes("+") && !/\s/u.test(name) && !LINE_CONTROL.test(name);
}

/** key ID = SHA-256(name || 0x0A || type || public key)[:4], as an unsigned 32-bit number. */
export async function computeKeyId(name, sigType, publicKey) {
  const digest = await sha256(concat(utf8.encode(name + "\n"), Uint8Array.of(sigType), publicKey));
  return new DataView(digest.buffer).getUint32(0, false);
}

/** The parts of a verifier key string `name+hex(keyID)+base64(type || key)`; syntax only. */
export function parseVkey(vkey) {
  const first = vkey.indexOf("+");
  const second = vkey.indexOf("+", first + 1);
  if (first < 0 || second < 0) throw new VerifyError("verifier key must be name+keyid+base64key");
  const name = vkey.slice(0, first);
  const hexId = vkey.slice(first + 1, second);
  if (!validKeyName(name)) throw new VerifyError(`invalid key name ${JSON.stringify(name)}`);
  if (!HEX8.test(hexId)) throw new VerifyError(`verifier key ID ${hexId} is not 8 lowercase hex digits`);
  const raw = b64decode(vkey.slice(second + 1), "verifier key material");
  if (raw.length < 2) throw new VerifyError("verifier key material is too short");
  return { name, keyId: parseInt(hexId, 16), sigType: raw[0], publicKey: raw.slice(1) };
}

async function importEd25519(raw, what) {
  if (!(raw instanceof Uint8Array) || raw.length !== 32) {
    throw new VerifyError(`${what} is not a 32-byte Ed25519 public key`);
  }
  return crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
}

async function ed25519Verifies(key, signature, message) {
  if (signature.length !== 64) return false;
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
}

/** A trusted plain Ed25519 note key (type 0x01). */
export async function ed25519Verifier(name, publicKey) {
  if (!validKeyName(name)) throw new VerifyError(`invalid key name ${JSON.stringify(name)}`);
  const key = await importEd25519(publicKey, `key of ${name}`);
  return {
    name,
    kind: "log",
    keyId: await computeKeyId(name, SIG_TYPE_ED25519, publicKey),
    verify: (message, signature) => ed25519Verifies(key, signature, message),
  };
}

/** A trusted witness key (tlog-cosignature v1, type 0x04). */
export async function cosignatureVerifier(name, publicKey) {
  if (!validKeyName(name)) throw new VerifyError(`invalid key name ${JSON.stringify(name)}`);
  const key = await importEd25519(publicKey, `key of ${name}`);
  return {
    name,
    kind: "witness",
    keyId: await computeKeyId(name, SIG_TYPE_COSIGNATURE_V1, publicKey),
    async verify(message, signature) {
      if (signature.length !== 8 + 64) return false;
      const timestamp = new DataView(signature.buffer, signature.byteOffset).getBigUint64(0, false);
      if (timestamp > (1n << 63n) - 1n) return false;
      const text = fromUtf8.decode(message);
      const signed = utf8.encode(`cosignature/v1\ntime ${timestamp}\n${text}`);
      return ed25519Verifies(key, signature.slice(8), signed);
    },
  };
}

/** A verifier from a vkey string, insisting on the spec's key ID (types 0x01 and 0x04). */
export async function verifierFromVkey(vkey) {
  const parsed = parseVkey(vkey);
  const make = { [SIG_TYPE_ED25519]: ed25519Verifier, [SIG_TYPE_COSIGNATURE_V1]: cosignatureVerifier }[
    parsed.sigType
  ];
  if (!make) throw new VerifyError(`verifier key has unsupported signature type ${parsed.sigType}`);
  const verifier = await make(parsed.name, parsed.publicKey);
  if (verifier.keyId !== parsed.keyId) {
    throw new VerifyError("verifier key ID does not match the key");
  }
  return verifier;
}

/** Split a note into text and signature lines; checks syntax only. */
export function parseNote(note) {
  if (typeof note !== "string") throw new VerifyError("note must be text");
  const bad = note.match(NOTE_CONTROL);
  if (bad) throw new VerifyError(`note contains a control character at offset ${bad.index}`);
  if (!note.endsWith("\n")) throw new VerifyError("note does not end with a newline");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new VerifyError("note has no blank line before its signatures");
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block) throw new VerifyError("note has no signature lines after its last blank line");
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) throw new VerifyError(`note has ${lines.length} signatures`);
  const signatures = lines.map((line, i) => {
    const where = `signature line ${i + 1}`;
    if (!line.startsWith(SIG_PREFIX)) throw new VerifyError(`${where} does not start with an em dash and a space`);
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(" ");
    if (space < 0) throw new VerifyError(`${where} has no space after the key name`);
    const name = rest.slice(0, space);
    if (!validKeyName(name)) throw new VerifyError(`${where} has an invalid key name`);
    const blob = b64decode(rest.slice(space + 1), where);
    if (blob.length < 5) throw new VerifyError(`${where} is shorter than key ID + signature`);
    const keyId = new DataView(blob.buffer).getUint32(0, false);
    return { name, keyId, signature: blob.slice(4) };
  });
  return { text, signatures };
}

/**
 * Verify a note against trusted keys, per the spec: signatures from unknown keys are
 * ignored, a signature from a known key that fails rejects the note, and at least one
 * must verify. Returns the text and the verified signatures, each with its verifier.
 */
export async function openNote(note, verifiers) {
  const parsed = parseNote(note);
  const message = utf8.encode(parsed.text);
  const known = new Map(verifiers.map((v) => [`${v.name}+${v.keyId}`, v]));
  const verified = [];
  const seen = new Set();
  for (const sig of parsed.signatures) {
    const id = `${sig.name}+${sig.keyId}`;
    const verifier = known.get(id);
    if (!verifier) continue;
    if (!(await verifier.verify(message, sig.signature))) {
      throw new VerifyError(`invalid signature for key ${sig.name}+${sig.keyId.toString(16).padStart(8, "0")}`);
    }
    if (!seen.has(id)) {
      seen.add(id);
      verified.push({ ...sig, verifier });
    }
  }
  if (!verified.length) throw new VerifyError("no signature in the note is from a trusted key");
  return { text: parsed.text, verified };
}

// ---------------------------------------------------------------- checkpoints and proofs

/** Parse checkpoint note text (no signatures), rejecting anything not exact. */
export function parseCheckpoint(text) {
  if (!text.endsWith("\n")) throw new VerifyError("checkpoint text must end with a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new VerifyError("checkpoint needs origin, tree size and root hash");
  lines.forEach((line, i) => {
    if (!line || LINE_CONTROL.test(line)) throw new VerifyError(`checkpoint line ${i + 1} is empty or has a control character`);
  });
  const [origin, sizeLine, rootLine, ...extensions] = lines;
  if (!DECIMAL.test(sizeLine) || BigInt(sizeLine) > MAX_UINT64) {
    throw new VerifyError("checkpoint line 2: tree size is not a 64-bit decimal without leading zeros");
  }
  const root = b64decode(rootLine, "checkpoint line 3: root hash");
  checkHash(root, "checkpoint root hash");
  return { origin, size: BigInt(sizeLine), root, extensions };
}

/** Parse a C2SP tlog-proof; its checkpoint note is returned unverified. */
export function parseTlogProof(text) {
  if (typeof text !== "string") throw new VerifyError("tlog-proof must be text");
  const lines = [];
  let pos = 0;
  const next = (what) => {
    const end = text.indexOf("\n", pos);
    if (end < 0) throw new VerifyError(`tlog-proof ends before the ${what}`);
    const line = text.slice(pos, end);
    pos = end + 1;
    lines.push(line);
    return line;
  };
  if (next("header line") !== TLOG_PROOF_HEADER) throw new VerifyError(`tlog-proof does not start with ${TLOG_PROOF_HEADER}`);
  let line = next("index line");
  let extra = null;
  if (line.startsWith("extra ")) {
    extra = b64decode(line.slice(6), "tlog-proof extra data");
    line = next("index line");
  }
  if (!line.startsWith("index ")) throw new VerifyError(`tlog-proof line ${lines.length}: expected 'index <n>'`);
  const indexText = line.slice(6);
  if (!DECIMAL.test(indexText) || BigInt(indexText) > MAX_UINT64) {
    throw new VerifyError("tlog-proof index is not a 64-bit decimal without leading zeros");
  }
  const hashes = [];
  while ((line = next("blank line before the checkpoint"))) {
    if (hashes.length === MAX_PROOF_HASHES) throw new VerifyError("tlog-proof has too many hashes");
    const h = b64decode(line, `tlog-proof line ${lines.length}`);
    checkHash(h, `tlog-proof hash ${hashes.length}`);
    hashes.push(h);
  }
  const checkpoint = text.slice(pos);
  if (!checkpoint) throw new VerifyError("tlog-proof has no checkpoint after the blank line");
  return { index: BigInt(indexText), hashes, checkpoint, extra };
}

// ---------------------------------------------------------------- the signed directory

/** SHA-256 of the raw directory key, hex in groups of four: what the auditor compares. */
export async function keyFingerprint(rawKey) {
  const hex = toHex(await sha256(rawKey));
  return hex.match(/.{4}/g).join(" ");
}

/** The directory, parsed only if the consortium's directory key signed its exact bytes. */
export async function openDirectory(directoryBytes, signature, directoryKey) {
  const key = await importEd25519(directoryKey, "directory key");
  if (!(await ed25519Verifies(key, signature, directoryBytes))) {
    throw new VerifyError("directory signature does not verify under the trusted directory key");
  }
  let doc;
  try {
    doc = JSON.parse(fromUtf8.decode(directoryBytes));
  } catch {
    throw new VerifyError("signed directory is not JSON");
  }
  if (!doc || typeof doc.consortium !== "string" || !Array.isArray(doc.members)) {
    throw new VerifyError("signed directory is not an object with a consortium and members");
  }
  return doc;
}

function memberKey(member) {
  return b64decode(String(member.sign_key), `sign_key of ${member.node_id}`);
}

/** The broker's log verifier and the members' witness verifiers, from a verified directory. */
export async function logKeys(directory, brokerId) {
  const broker = directory.members.find((m) => m.node_id === brokerId);
  if (!broker || broker.role !== "broker") throw new VerifyError(`the directory lists no broker ${brokerId}`);
  if ((broker.status ?? "active") !== "active") throw new VerifyError(`broker ${brokerId} is revoked in the directory`);
  const origin = `${directory.consortium}/gateway-audit`;
  const log = await ed25519Verifier(origin, memberKey(broker));
  const witnesses = [];
  for (const m of directory.members) {
    if (m.role === "broker" || (m.status ?? "active") !== "active") continue;
    const v = await cosignatureVerifier(`${directory.consortium}/witness/${m.node_id}`, memberKey(m));
    witnesses.push({ ...v, nodeId: m.node_id, agency: String(m.agency ?? "") });
  }
  return { origin, log, witnesses };
}

// ---------------------------------------------------------------- one entry, end to end

/**
 * Check one audit entry from untrusted inputs against the trusted directory key.
 *
 * input: { index, leaf (bytes), tlogProof (text), directory (bytes), directorySignature
 * (bytes), directoryKey (32 raw bytes, trusted), brokerId }. Returns { ok, checks, ... };
 * `ok` is true only if every check passed. Never throws for bad input.
 */
export async function verifyEntry(input) {
  const checks = [];
  const result = { ok: false, checks, cosigners: [], error: "" };
  const step = async (what, fn) => {
    try {
      const detail = await fn();
      checks.push({ what, ok: true, detail: detail ?? "" });
    } catch (e) {
      const reason = e instanceof VerifyError ? e.message : `${e?.name ?? "Error"}: ${e?.message ?? e}`;
      checks.push({ what, ok: false, detail: reason });
      result.error = `${what}: ${reason}`;
      throw e;
    }
  };
  try {
    let directory;
    let keys;
    await step("directory", async () => {
      directory = await openDirectory(input.directory, input.directorySignature, input.directoryKey);
      keys = await logKeys(directory, input.brokerId);
      return `serial ${directory.serial}, signed by the directory key ${await keyFingerprint(input.directoryKey)}`;
    });
    let proof;
    let checkpoint;
    await step("checkpoint", async () => {
      proof = parseTlogProof(input.tlogProof);
      const opened = await openNote(proof.checkpoint, [keys.log, ...keys.witnesses]);
      if (!opened.verified.some((s) => s.verifier === keys.log)) {
        throw new VerifyError("checkpoint is not signed by the broker's log key");
      }
      checkpoint = parseCheckpoint(opened.text);
      if (checkpoint.origin !== keys.origin) {
        throw new VerifyError(`checkpoint origin ${checkpoint.origin} is not ${keys.origin}`);
      }
      for (const s of opened.verified) {
        if (s.verifier.kind !== "witness") continue;
        const t = new DataView(s.signature.buffer, s.signature.byteOffset).getBigUint64(0, false);
        result.cosigners.push({ nodeId: s.verifier.nodeId, agency: s.verifier.agency, time: Number(t) });
      }
      result.size = checkpoint.size.toString();
      result.root = toHex(checkpoint.root);
      return `size ${checkpoint.size}, signed by ${keys.origin}`;
    });
    await step("inclusion", async () => {
      if (proof.index !== BigInt(input.index)) {
        throw new VerifyError(`the proof is for entry ${proof.index}, not entry ${input.index}`);
      }
      const hash = await leafHash(input.leaf);
      await verifyInclusion(hash, proof.index, checkpoint.size, proof.hashes, checkpoint.root);
      result.leafHash = toHex(hash);
      return `entry ${proof.index} of ${checkpoint.size}, leaf hash ${toHex(hash)}`;
    });
    result.ok = checks.length === 3 && checks.every((c) => c.ok);
  } catch {
    result.ok = false;
  }
  return result;
}
