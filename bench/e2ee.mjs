// bench/e2ee.mjs - the browser side of bench/e2ee.sh: web/lib/frame.js and
// web/lib/session.js on Node's WebCrypto (the same API browsers have).
// Prints the same lines as bench/e2ee_bench.c:
//   frame <bytes> <ns per seal+open> <messages>
//   handshake <us per handshake (both sides)> <handshakes>
import { webcrypto } from 'node:crypto';

import { FrameCipher } from '../web/lib/frame.js';
import { generateIdentity, peerIdOf } from '../web/lib/identity.js';
import { Handshake } from '../web/lib/session.js';

const secs = Number(process.argv[2] || 1);
const SIZES = [16, 100, 1024, 8192, 16384, 65536];

async function frames(size) {
  const key = webcrypto.getRandomValues(new Uint8Array(32));
  const tx = new FrameCipher(key);
  const rx = new FrameCipher(key);
  const pt = webcrypto.getRandomValues(new Uint8Array(Math.min(size, 65536)));
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < secs * 1000) {
    for (let i = 0; i < 64; i++, n++) {
      const back = await rx.open(await tx.seal(pt));
      if (back.length !== size) throw new Error('round trip failed');
    }
    t = performance.now();
  }
  console.log(`frame ${size} ${Math.round(((t - t0) * 1e6) / n)} ${n}`);
}

async function handshakes() {
  const a = await generateIdentity();
  const b = await generateIdentity();
  const [pa, pb] = [await peerIdOf(a), await peerIdOf(b)];
  const fpI = webcrypto.getRandomValues(new Uint8Array(32));
  const fpR = webcrypto.getRandomValues(new Uint8Array(32));
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < secs * 1000) {
    const i = new Handshake({ role: 'initiator', identity: a, expectedPeerId: pb, fpInitiator: fpI, fpResponder: fpR });
    const r = new Handshake({ role: 'responder', identity: b, expectedPeerId: pa, fpInitiator: fpI, fpResponder: fpR });
    const m2 = await r.receive(await i.start());
    const m3 = await i.receive(m2);
    await r.receive(m3);
    if (!i.done || !r.done) throw new Error('handshake failed');
    n++;
    t = performance.now();
  }
  console.log(`handshake ${(((t - t0) * 1000) / n).toFixed(1)} ${n}`);
}

for (const s of SIZES) await frames(s);
await handshakes();
