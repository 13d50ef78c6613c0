// node's `crypto`, as far as uuidv5 uses it: createHash("sha1").update(buffer).digest() -> Buffer.
// SHA-1 (FIPS 180-4) in plain JavaScript: uuidv5 hashes a namespace and a short name, so speed
// does not matter, and the engine's native crypto offers only SHA-256.
import { Buffer } from "buffer";

const rotl = (x, n) => (x << n) | (x >>> (32 - n));

function sha1(bytes) {
  const length = bytes.length;
  // Padding: 0x80, zeros, then the bit length as a 64-bit big-endian number.
  const padded = new Uint8Array((((length + 8) >> 6) + 1) << 6);
  padded.set(bytes);
  padded[length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(length / 0x20000000));
  view.setUint32(padded.length - 4, (length << 3) >>> 0);
  const h = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
  const w = new Int32Array(80);
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getInt32(block + i * 4);
    for (let i = 16; i < 80; i++) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    let [a, b, c, d, e] = h;
    for (let i = 0; i < 80; i++) {
      let f, k;
      if (i < 20) [f, k] = [(b & c) | (~b & d), 0x5a827999];
      else if (i < 40) [f, k] = [b ^ c ^ d, 0x6ed9eba1];
      else if (i < 60) [f, k] = [(b & c) | (b & d) | (c & d), 0x8f1bbcdc];
      else [f, k] = [b ^ c ^ d, 0xca62c1d6];
      const t = (rotl(a, 5) + f + e + k + w[i]) | 0;
      [e, d, c, b, a] = [d, c, rotl(b, 30), a, t];
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + b) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0;
  }
  const out = Buffer.alloc(20);
  h.forEach((word, i) => out.writeInt32BE(word, i * 4));
  return out;
}

export function createHash(algorithm) {
  if (String(algorithm).toLowerCase() !== "sha1") {
    throw new Error(`createHash: only sha1 is available to the bundled libraries, not ${algorithm}`);
  }
  const parts = [];
  return {
    update(data) {
      parts.push(Buffer.isBuffer(data) ? data : Buffer.from(String(data), "utf8"));
      return this;
    },
    digest(encoding) {
      const digest = sha1(Buffer.concat(parts));
      return encoding ? digest.toString(encoding) : digest;
    },
  };
}
