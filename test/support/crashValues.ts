/**
 * Values for the crash and stress tests: each is a deterministic function of (key, writer, seq,
 * kind), so a reader can tell whether a value it got is one that was ever written for that key
 * (regenerate it and compare) without a log of every byte.
 */
import { isDeepStrictEqual } from "node:util"

export type Kind = "small" | "large" | "bytes" | "typed"

/** mulberry32: a tiny seeded PRNG, enough to make incompressible bytes reproducibly. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const seedOf = (key: number, writer: number, seq: number) =>
  (key * 1_000_003) ^ (writer * 7_919) ^ (seq * 2_654_435_761)

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
    case "typed": {
      // A Float64Array (the nd-array format: byte-shuffled, compressed in blocks) of ≥ 16 KiB
      // whose first three elements name key, writer and seq.
      const out = new Float64Array(2048 + Math.floor(random() * 4096))
      out[0] = key
      out[1] = writer
      out[2] = seq
      for (let i = 3; i < out.length; i++) out[i] = random() * 1e6
      return out
    }
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
export const identify = (
  key: number,
  value: unknown
): { readonly writer: number; readonly seq: number; readonly kind: Kind } | null => {
  let id: { writer: number; seq: number; kind: Kind }
  if (value instanceof Float64Array) {
    if (value.length < 3 || value[0] !== key) return null
    id = { writer: value[1], seq: value[2], kind: "typed" }
  } else if (value instanceof Uint8Array) {
    if (value.length < 12) return null
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
    if (view.getUint32(0) !== key) return null
    id = { writer: view.getUint32(4), seq: view.getUint32(8), kind: "bytes" }
  } else if (typeof value === "object" && value !== null && (value as any).key === key) {
    const v = value as { writer: unknown; seq: unknown; kind: unknown }
    if (typeof v.writer !== "number" || typeof v.seq !== "number" || (v.kind !== "small" && v.kind !== "large")) {
      return null
    }
    id = { writer: v.writer, seq: v.seq, kind: v.kind }
  } else {
    return null
  }
  const expected = valueOf(key, id.writer, id.seq, id.kind)
  const same = expected instanceof Float64Array
    ? Buffer.from(expected.buffer).equals(
      Buffer.from(
        (value as Float64Array).buffer,
        (value as Float64Array).byteOffset,
        (value as Float64Array).byteLength
      )
    )
    : expected instanceof Uint8Array
    ? Buffer.from(expected).equals(Buffer.from(value as Uint8Array))
    : isDeepStrictEqual({ ...(expected as object), bytes: undefined }, { ...(value as object), bytes: undefined }) &&
      ((expected as any).bytes === undefined ||
        Buffer.from((expected as any).bytes).equals(Buffer.from((value as any).bytes)))
  return same ? id : null
}

/** A kind picked by `r` in [0, 1): mostly small values, the rest blobs of each format. */
export const kindOf = (r: number): Kind => r < 0.55 ? "small" : r < 0.75 ? "large" : r < 0.9 ? "bytes" : "typed"
