/**
 * Values for the crash and stress tests: each is a deterministic function of (key, writer, seq,
 * kind), so a reader can tell whether a value it got is one that was ever written for that key
 * (regenerate it and compare) without a log of every byte.
 */
import { isDeepStrictEqual } from "node:util"

export type Kind = "small" | "large" | "bytes"

/** mulberry32: a tiny seeded PRNG, enough to make incompressible bytes reproducibly. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const seedOf = (key: number, writer: number, seq: number) => (key * 1_000_003) ^ (writer * 7_919) ^ (seq * 2_654_435_761)

const noise = (random: () => number, length: number): Uint8Array => {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i += 4) {
    const word = (random() * 4294967296) >>> 0
    out[i] = word
    out[i + 1] = word >>> 8
    out[i + 2] = word >>> 16
    out[i + 3] = word >>> 24
  }
  return out
}

/**
 * The value written for `key` by `writer` at `seq`: a small inline object, a large object holding
 * ≥ 16 KiB of incompressible bytes (a blob), or raw incompressible bytes (a blob in the "bytes"
 * format) whose first 12 bytes name key, writer and seq.
 */
export const valueOf = (key: number, writer: number, seq: number, kind: Kind): unknown => {
  const random = prng(seedOf(key, writer, seq))
  switch (kind) {
    case "small":
      return { key, writer, seq, kind, text: `v${Math.floor(random() * 1e9)}`.repeat(1 + Math.floor(random() * 8)) }
    case "large":
      return { key, writer, seq, kind, bytes: noise(random, 16 * 1024 + 4 * Math.floor(random() * 16_000)) }
    case "bytes": {
      const out = noise(random, 20 * 1024 + 4 * Math.floor(random() * 30_000))
      const view = new DataView(out.buffer)
      view.setUint32(0, key)
      view.setUint32(4, writer)
      view.setUint32(8, seq)
      return out
    }
  }
}

/** Who wrote a value (as `valueOf` built it), or `null` when it is no value `valueOf` makes for `key`. */
export const identify = (key: number, value: unknown): { readonly writer: number; readonly seq: number; readonly kind: Kind } | null => {
  let id: { writer: number; seq: number; kind: Kind }
  if (value instanceof Uint8Array) {
    if (value.length < 12) return null
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
    if (view.getUint32(0) !== key) return null
    id = { writer: view.getUint32(4), seq: view.getUint32(8), kind: "bytes" }
  } else if (typeof value === "object" && value !== null && (value as any).key === key) {
    const v = value as { writer: unknown; seq: unknown; kind: unknown }
    if (typeof v.writer !== "number" || typeof v.seq !== "number" || (v.kind !== "small" && v.kind !== "large")) return null
    id = { writer: v.writer, seq: v.seq, kind: v.kind }
  } else {
    return null
  }
  const expected = valueOf(key, id.writer, id.seq, id.kind)
  const same = expected instanceof Uint8Array
    ? Buffer.from(expected).equals(Buffer.from(value as Uint8Array))
    : isDeepStrictEqual({ ...(expected as object), bytes: undefined }, { ...(value as object), bytes: undefined }) &&
      ((expected as any).bytes === undefined || Buffer.from((expected as any).bytes).equals(Buffer.from((value as any).bytes)))
  return same ? id : null
}

/** A kind picked by `r` in [0, 1): mostly small values, a third blobs. */
export const kindOf = (r: number): Kind => r < 0.6 ? "small" : r < 0.85 ? "large" : "bytes"
