/**
 * LZ4 block compression in plain TypeScript, writing into memory the caller provides. The blocks of
 * large arrays and tables (`blocks.ts`) use it instead of lz4-napi for one reason: lz4-napi returns
 * every result in a freshly allocated buffer, and on this kind of VM the first write to fresh memory
 * costs a page fault per 4 KiB — 16 MiB of fresh output took longer to fault in than to compress.
 * Writing into the stored value's buffer (compress) and into a reused scratch block (decompress)
 * leaves no fresh memory on the way; measured on 16 MiB shuffled blocks, compression ran 3×
 * faster than lz4-napi and decompression 10× (docs/PERFORMANCE.md).
 *
 * The output is the standard LZ4 block format (what lz4-napi's `compressSync` writes after its
 * 4-byte size prefix), so either side decodes the other's blocks: the stored format is unchanged.
 * The match finder is LZ4's fast mode (a 64 Ki-entry hash table of 4-byte sequences, skipping
 * ahead faster the longer no match turns up), so incompressible bytes cost little.
 *
 * @since 0.1.0
 */

const MIN_MATCH = 4
// The last 5 bytes are always literals, and no match starts in the last 12 (LZ4's end rules).
const LAST_LITERALS = 5
const MF_LIMIT = 12
const HASH_LOG = 16
const MAX_DISTANCE = 65535
const SKIP_TRIGGER = 6
// Matches this long switch from a byte loop to native comparisons.
const LONG_MATCH = 256

// Positions of recently seen 4-byte sequences; one table reused by every call (calls never nest).
const table = new Int32Array(1 << HASH_LOG)

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

const read32 = (s: Uint8Array, i: number): number => s[i]! | (s[i + 1]! << 8) | (s[i + 2]! << 16) | (s[i + 3]! << 24)

const hash = (sequence: number): number => Math.imul(sequence, -1640531535) >>> (32 - HASH_LOG)

/**
 * Worst-case compressed size of `length` bytes.
 *
 * @since 0.1.0
 * @category compression
 */
export const bound = (length: number): number => length + Math.floor(length / 255) + 16

// Short copies byte by byte: a native `set` costs more than it saves below ~64 bytes.
const copy = (src: Uint8Array, from: number, dst: Uint8Array, to: number, length: number) => {
  if (length < 64) {
    for (let i = 0; i < length; i++) dst[to + i] = src[from + i]!
  } else {
    dst.set(src.subarray(from, from + length), to)
  }
}

/** The rest of a length past 15 in LZ4's encoding: 255s, then the remainder. Returns the new position. */
const writeLength = (rest: number, dst: Uint8Array, d: number): number => {
  while (rest >= 255) {
    dst[d++] = 255
    rest -= 255
  }
  dst[d++] = rest
  return d
}

/**
 * A sequence's token (literal count in its high nibble; the caller ORs the match length into the
 * low one), literal length bytes and the literals themselves, at `d`. Returns the new position.
 */
const writeLiterals = (src: Uint8Array, anchor: number, literals: number, dst: Uint8Array, d: number): number => {
  const token = d++
  if (literals >= 15) {
    dst[token] = 0xf0
    d = writeLength(literals - 15, dst, d)
  } else {
    dst[token] = literals << 4
  }
  copy(src, anchor, dst, d, literals)
  return d + literals
}

/**
 * Compresses `src` as one LZ4 block into `dst` from `at`, writing at most `limit` bytes. Returns
 * the compressed length, or -1 as soon as the output would pass `limit` (the caller then stores
 * the bytes raw, having spent little on them).
 *
 * @since 0.1.0
 * @category compression
 */
export const compress = (src: Uint8Array, dst: Uint8Array, at: number, limit: number): number => {
  const n = src.length
  const end = at + limit
  let d = at
  let anchor = 0
  if (n > MF_LIMIT) {
    table.fill(-1)
    const lastMatchStart = n - MF_LIMIT
    const matchLimit = n - LAST_LITERALS
    table[hash(read32(src, 0))] = 0
    let ip = 1
    search: for (;;) {
      let ref = -1
      let step = 1
      let attempts = 1 << SKIP_TRIGGER
      for (;;) {
        if (ip > lastMatchStart) break search
        const sequence = read32(src, ip)
        const h = hash(sequence)
        ref = table[h]!
        table[h] = ip
        if (ref >= 0 && ip - ref <= MAX_DISTANCE && read32(src, ref) === sequence) break
        ip += step
        step = attempts++ >>> SKIP_TRIGGER
      }
      while (ip > anchor && ref > 0 && src[ip - 1] === src[ref - 1]) {
        ip--
        ref--
      }
      const literals = ip - anchor
      // token + literal length bytes + literals + offset, before the match length is known.
      if (d + 1 + Math.floor(literals / 255) + 1 + literals + 2 > end) return -1
      const token = d
      d = writeLiterals(src, anchor, literals, dst, d)
      let mp = ip + MIN_MATCH
      let rp = ref + MIN_MATCH
      const probeEnd = Math.min(matchLimit, mp + LONG_MATCH)
      while (mp < probeEnd && src[mp] === src[rp]) {
        mp++
        rp++
      }
      if (mp === probeEnd && mp < matchLimit) {
        // A long match (runs, repeated rows): gallop with native comparisons of growing spans
        // instead of a byte at a time — shuffled ascending ints are mostly such matches.
        const view = asBuffer(src)
        let span = LONG_MATCH
        while (span >= 8 && mp < matchLimit) {
          const n = Math.min(span, matchLimit - mp)
          if (view.compare(view, rp, rp + n, mp, mp + n) === 0) {
            mp += n
            rp += n
            span *= 2
          } else {
            span >>>= 1
          }
        }
        while (mp < matchLimit && src[mp] === src[rp]) {
          mp++
          rp++
        }
      }
      const distance = ip - ref
      dst[d++] = distance & 0xff
      dst[d++] = distance >>> 8
      const matchLength = mp - ip - MIN_MATCH
      if (matchLength >= 15) {
        if (d + 1 + Math.floor((matchLength - 15) / 255) > end) return -1
        dst[token] |= 15
        d = writeLength(matchLength - 15, dst, d)
      } else {
        dst[token] |= matchLength
      }
      ip = mp
      anchor = ip
      if (ip > lastMatchStart) break
      table[hash(read32(src, ip - 2))] = ip - 2
    }
  }
  const literals = n - anchor
  if (d + 1 + Math.floor(literals / 255) + 1 + literals > end) return -1
  d = writeLiterals(src, anchor, literals, dst, d)
  return d - at
}

const corrupt = (what: string): never => {
  throw new RangeError(`corrupt LZ4 block: ${what}`)
}

/**
 * Decompresses one LZ4 block (`src`, no size prefix) into `dst`, which it must fill exactly.
 * Every length and offset is bounds-checked (typed arrays drop out-of-range writes silently, so
 * nothing else would notice): corrupt input throws `RangeError`.
 *
 * @since 0.1.0
 * @category compression
 */
export const decompress = (src: Uint8Array, dst: Uint8Array): void => {
  const srcEnd = src.length
  const dstEnd = dst.length
  let s = 0
  let d = 0
  for (;;) {
    if (s >= srcEnd) corrupt("truncated")
    const token = src[s++]!
    let literals = token >>> 4
    if (literals === 15) {
      let byte: number
      do {
        if (s >= srcEnd) corrupt("truncated literal length")
        byte = src[s++]!
        literals += byte
      } while (byte === 255)
    }
    if (s + literals > srcEnd || d + literals > dstEnd) corrupt("literals out of bounds")
    copy(src, s, dst, d, literals)
    s += literals
    d += literals
    if (s === srcEnd) break
    if (s + 2 > srcEnd) corrupt("truncated offset")
    const distance = src[s]! | (src[s + 1]! << 8)
    s += 2
    if (distance === 0 || distance > d) corrupt("offset out of bounds")
    let length = token & 15
    if (length === 15) {
      let byte: number
      do {
        if (s >= srcEnd) corrupt("truncated match length")
        byte = src[s++]!
        length += byte
      } while (byte === 255)
    }
    length += MIN_MATCH
    if (d + length > dstEnd) corrupt("match out of bounds")
    let from = d - distance
    if (distance >= length) {
      if (length >= 64) dst.copyWithin(d, from, from + length)
      else for (let i = 0; i < length; i++) dst[d + i] = dst[from + i]!
      d += length
    } else if (distance === 1) {
      dst.fill(dst[from]!, d, d + length)
      d += length
    } else if (length < 64) {
      const stop = d + length
      while (d < stop) dst[d++] = dst[from++]!
    } else {
      // An overlapping match repeats the last `distance` bytes: copy in doubling runs (each a
      // whole number of periods, so the source is always already written).
      let done = 0
      let run = distance
      while (done < length) {
        const take = Math.min(run, length - done)
        dst.copyWithin(d + done, from, from + take)
        done += take
        run = distance + done
      }
      d += length
    }
  }
  if (d !== dstEnd) corrupt(`decompressed to ${d} bytes, expected ${dstEnd}`)
}
