/**
 * Arithmetic sequences of 4- or 8-byte little-endian words: word i = first + i·step (modulo
 * 2^32 or 2^64). Row ids, ascending counters and constant columns are such pieces, and stored as
 * their first word and step they cost a get only the writing of their words: an int64 id column of
 * 1M rows took 1.5 ms to decode shuffled (an LZ4 decode of 8 MB of mostly zero planes and an
 * unshuffle), where writing the words takes ~0.3 ms.
 *
 * The words are written 16 bytes at a time by a WebAssembly SIMD loop (`i64x2.add` or `i32x4.add`)
 * into a chunk of its memory, which is copied out while in cache; a JS loop over 32-bit halves
 * (~1.3 ms for 1M int64s) where WebAssembly SIMD is missing. Detecting a sequence compares each
 * word with the one the first two imply: chunks the SIMD writer made, compared natively, or a JS
 * loop without SIMD; it stops at the first chunk (or word) that does not follow.
 *
 * ```
 * seqW(dst, end)   W ∈ {64, 32}: vector v at 0, increment at 16
 *   while dst < end: store v at dst; v += increment (lane-wise); dst += 16
 *   v stored back at 0
 * ```
 *
 * @since 0.1.0
 */
import { Buffer } from "node:buffer"
import { builder } from "./simd.js"

const { name, op, section, uleb, V128, vector } = builder

/** Bytes written per call, copied out while in cache. */
const CHUNK = 64 << 10
/** Where the chunk starts in the module's memory (the vector and its increment come first). */
const AT = 64
const PAGES = Math.ceil((AT + CHUNK) / 65536)

const I64X2_ADD = [0xfd, 0xce, 0x01]
const I32X4_ADD = [0xfd, 0xae, 0x01]

/**
 * A function body over the 16-byte vectors of [param 0, param 1): `before`, then `each` while
 * param 0 < param 1 (param 0 advanced by 16 after it), then `after`; `locals` v128 locals from 2.
 */
const overVectors = (
  locals: number,
  before: ReadonlyArray<number>,
  each: ReadonlyArray<number>,
  after: ReadonlyArray<number>
): Array<number> => {
  const code = [
    ...before,
    ...op.block,
    ...op.loop,
    ...op.get(0),
    ...op.get(1),
    ...op.geU,
    ...op.brIf(1),
    ...each,
    ...op.get(0),
    ...op.const(16),
    ...op.add,
    ...op.set(0),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...after,
    ...op.end
  ]
  const body = [...vector([[locals, V128]]), ...code]
  return [...uleb(body.length), ...body]
}

/** The body of seqW(dst, end): locals v 2, increment 3; each vector stored, then v += increment. */
const seqBody = (add: ReadonlyArray<number>): Array<number> =>
  overVectors(
    2,
    [...op.const(0), ...op.load(0), ...op.set(2), ...op.const(0), ...op.load(16), ...op.set(3)],
    [...op.get(0), ...op.get(2), ...op.store(0), ...op.get(2), ...op.get(3), ...add, ...op.set(2)],
    [...op.const(0), ...op.get(2), ...op.store(0)]
  )

const V128_OR = [0xfd, 0x50]
/** Where `or` keeps the vector it ORs words into. */
const OR_AT = 32

/** The body of or(src, end): the vector at OR_AT |= every vector in [src, end); local acc 2. */
const orBody = (): Array<number> =>
  overVectors(
    1,
    [...op.const(0), ...op.load(OR_AT), ...op.set(2)],
    [...op.get(2), ...op.get(0), ...op.load(0), ...V128_OR, ...op.set(2)],
    [...op.const(0), ...op.get(2), ...op.store(OR_AT)]
  )

const moduleBytes = (): Uint8Array =>
  new Uint8Array([
    ...builder.MAGIC_AND_VERSION,
    ...section(1, vector([[0x60, ...vector([[builder.I32], [builder.I32]]), 0]])),
    ...section(3, vector([[0], [0], [0]])),
    ...section(5, vector([[0x00, ...uleb(PAGES)]])),
    ...section(
      7,
      vector([
        [...name("memory"), 0x02, 0],
        [...name("seq64"), 0x00, 0],
        [...name("seq32"), 0x00, 1],
        [...name("or"), 0x00, 2]
      ])
    ),
    ...section(10, vector([seqBody(I64X2_ADD), seqBody(I32X4_ADD), orBody()]))
  ])

type Kernel = (dst: number, end: number) => void

const WebAssembly = builder.WebAssembly

const instantiate = () => {
  try {
    const bytes = moduleBytes()
    if (WebAssembly === undefined || !WebAssembly.validate(bytes)) return null
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports
    // The memory never grows, so one view of it stays valid; touched once here.
    const memory = new Uint8Array((exports.memory as { readonly buffer: ArrayBuffer }).buffer).fill(0)
    return { memory, seq64: exports.seq64 as Kernel, seq32: exports.seq32 as Kernel, or: exports.or as Kernel }
  } catch {
    return null
  }
}

const wasm = instantiate()

/**
 * Whether the SIMD kernels run here (else `write`, `detect` and `orUpTo` take their JS loops).
 *
 * @since 0.1.0
 * @category sequences
 */
export const available: boolean = wasm !== null

let enabled = available

/**
 * Turns the SIMD kernels on (where available) or off (tests compare both paths in one process).
 *
 * @since 0.1.0
 * @category sequences
 */
export const enable = (on: boolean): void => {
  enabled = on && available
}

/**
 * An arithmetic sequence of `width`-byte words, as unsigned integers.
 *
 * @since 0.1.0
 * @category sequences
 */
export interface Sequence {
  readonly width: 4 | 8
  readonly first: bigint
  readonly step: bigint
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Words compared between checks: a piece that is no sequence is given up at its first chunk. */
const SCAN_CHUNK = 4096

/** Whether the 64-bit words of `w` (lo, hi halves) step by (sl, sh) from word 1 on. */
const steps64 = (w: Uint32Array, sl: number, sh: number): boolean => {
  let lo = w[0]!
  let hi = w[1]!
  for (let i = 2; i < w.length; i += 2) {
    const nextLo = (lo + sl) >>> 0
    const nextHi = (hi + sh + (nextLo < lo ? 1 : 0)) >>> 0
    if (w[i] !== nextLo || w[i + 1] !== nextHi) return false
    lo = nextLo
    hi = nextHi
  }
  return true
}

const steps32 = (w: Uint32Array, step: number): boolean => {
  let word = w[0]!
  for (let start = 1; start < w.length; start += SCAN_CHUNK) {
    const end = Math.min(w.length, start + SCAN_CHUNK)
    for (let i = start; i < end; i++) {
      word = (word + step) >>> 0
      if (w[i] !== word) return false
    }
  }
  return true
}

/**
 * The arithmetic sequence `piece` is, as 8-byte words (tried first) or 4-byte words; `undefined`
 * when it is neither (or holds fewer than two words, or is not aligned to them in memory, or the
 * host is big-endian). `aligned(width)` says whether the piece sits at a multiple of `width` in
 * its stream.
 *
 * @since 0.1.0
 * @category sequences
 */
export const detect = (piece: Uint8Array, aligned: (width: 4 | 8) => boolean): Sequence | undefined => {
  if (!LITTLE_ENDIAN || piece.byteOffset % 4 !== 0) return undefined
  const length = piece.byteLength
  if (length % 8 === 0 && length >= 16 && aligned(8)) {
    const w = new Uint32Array(piece.buffer, piece.byteOffset, length / 4)
    // The step: word 1 − word 0, modulo 2^64.
    const sl = (w[2]! - w[0]!) >>> 0
    const sh = (w[3]! - w[1]! - (w[2]! < w[0]! ? 1 : 0)) >>> 0
    const sequence: Sequence = { width: 8, first: word64(w[0]!, w[1]!), step: word64(sl, sh) }
    if (wasm !== null && enabled) {
      if (follows(piece, sequence)) return sequence
    } else if (
      // A first look at a stretch of the piece gives most non-sequences up after a few words.
      steps64(w.subarray(0, Math.min(w.length, 2 * SCAN_CHUNK)), sl, sh) && steps64(w, sl, sh)
    ) {
      return sequence
    }
  }
  if (length % 4 === 0 && length >= 8 && aligned(4)) {
    const w = new Uint32Array(piece.buffer, piece.byteOffset, length / 4)
    const step = (w[1]! - w[0]!) >>> 0
    const sequence: Sequence = { width: 4, first: BigInt(w[0]!), step: BigInt(step) }
    if (wasm !== null && enabled ? follows(piece, sequence) : steps32(w, step)) return sequence
  }
  return undefined
}

/**
 * The first `bytes` bytes of `sequence` (a multiple of 16), made by the SIMD writer a chunk at a
 * time in the module's memory and handed to `each` with their offset while in cache; stops, false,
 * at the first chunk `each` answers false for.
 */
const inChunks = (
  sequence: Sequence,
  bytes: number,
  each: (chunk: Uint8Array, done: number) => boolean
): boolean => {
  const { width } = sequence
  const perVector = 16 / width
  const { memory } = wasm!
  const state = new DataView(memory.buffer, 0, 32)
  for (let lane = 0; lane < perVector; lane++) {
    put(state, lane * width, wordAt(sequence, lane), width)
    put(state, 16 + lane * width, BigInt.asUintN(width * 8, BigInt(perVector) * sequence.step), width)
  }
  const kernel = width === 8 ? wasm!.seq64 : wasm!.seq32
  for (let done = 0; done < bytes; done += CHUNK) {
    const size = Math.min(CHUNK, bytes - done)
    kernel(AT, AT + size)
    if (!each(memory.subarray(AT, AT + size), done)) return false
  }
  return true
}

/**
 * Whether every word of `piece` is `sequence`'s: the SIMD writer makes the words a chunk at a
 * time and the chunk is compared with the piece's bytes natively (`memcmp`), the first chunk that
 * differs ending it. For 1M int64s ~0.6 ms, against ~2.8 ms for the JS loop once optimised and
 * 6–15 ms before (a cache's first puts).
 */
const follows = (piece: Uint8Array, sequence: Sequence): boolean => {
  const { width } = sequence
  const count = piece.byteLength / width
  const perVector = 16 / width
  const wide = count - (count % perVector)
  const whole = inChunks(
    sequence,
    wide * width,
    (chunk, done) => Buffer.compare(chunk, piece.subarray(done, done + chunk.byteLength)) === 0
  )
  if (!whole) return false
  const view = new DataView(piece.buffer, piece.byteOffset, piece.byteLength)
  for (let i = wide; i < count; i++) {
    const word = width === 8 ? view.getBigUint64(i * 8, true) : BigInt(view.getUint32(i * 4, true))
    if (word !== wordAt(sequence, i)) return false
  }
  return true
}

const word64 = (lo: number, hi: number): bigint => (BigInt(hi) << 32n) | BigInt(lo)

/** Word `i` of `sequence`. */
const wordAt = ({ first, step, width }: Sequence, i: number): bigint =>
  BigInt.asUintN(width * 8, first + BigInt(i) * step)

/** `value`'s low `width` bytes into `out` at `at`, little-endian. */
const put = (view: DataView, at: number, value: bigint, width: 4 | 8) => {
  if (width === 8) view.setBigUint64(at, value, true)
  else view.setUint32(at, Number(value), true)
}

/**
 * Writes `count` words of `sequence` into `region` (at least `count · width` bytes).
 *
 * @since 0.1.0
 * @category sequences
 */
export const write = (region: Uint8Array, sequence: Sequence, count: number): void => {
  const { width } = sequence
  const view = new DataView(region.buffer, region.byteOffset, count * width)
  const perVector = 16 / width
  const wide = wasm !== null && enabled ? count - (count % perVector) : 0
  if (wide > 0) {
    inChunks(sequence, wide * width, (chunk, done) => {
      region.set(chunk, done)
      return true
    })
  }
  if (wide === count) return
  if (!LITTLE_ENDIAN || region.byteOffset % 4 !== 0 || count - wide < perVector) {
    for (let i = wide; i < count; i++) put(view, i * width, wordAt(sequence, i), width)
    return
  }
  if (width === 4) {
    const w = new Uint32Array(region.buffer, region.byteOffset + wide * 4, count - wide)
    const step = Number(sequence.step)
    let word = Number(wordAt(sequence, wide))
    for (let i = 0; i < w.length; i++) {
      w[i] = word
      word = (word + step) >>> 0
    }
    return
  }
  // The JS loop: 32-bit halves with the carry, ~1 ns a word.
  const w = new Uint32Array(region.buffer, region.byteOffset + wide * 8, 2 * (count - wide))
  const start = wordAt(sequence, wide)
  const sl = Number(sequence.step & 0xffffffffn)
  const sh = Number(sequence.step >> 32n)
  let lo = Number(start & 0xffffffffn)
  let hi = Number(start >> 32n)
  for (let i = 0; i < w.length; i += 2) {
    w[i] = lo
    w[i + 1] = hi
    const nextLo = (lo + sl) >>> 0
    hi = (hi + sh + (nextLo < lo ? 1 : 0)) >>> 0
    lo = nextLo
  }
}

/** Words ORed between checks against the limit in the JS loop. */
const OR_CHUNK = 4096

/**
 * The bitwise OR of the `width`-byte little-endian words of `piece` (a whole number of them), or
 * some OR of its first words that is already ≥ `limit`: how many low bytes the words need (the
 * narrowing probe of the arrow format). With SIMD, each chunk is copied into the module's memory
 * and ORed 16 bytes at a time (~0.4 ms for 4 MB, against ~2.5 ms for the JS loop); else a JS loop
 * over typed-array words.
 *
 * @since 0.1.0
 * @category sequences
 */
export const orUpTo = (piece: Uint8Array, width: 2 | 4, limit: number): number => {
  if (wasm === null || !enabled) {
    const words = width === 4
      ? new Uint32Array(piece.buffer, piece.byteOffset, piece.byteLength / 4)
      : new Uint16Array(piece.buffer, piece.byteOffset, piece.byteLength / 2)
    let or = 0
    for (let start = 0; start < words.length && or < limit; start += OR_CHUNK) {
      const end = Math.min(words.length, start + OR_CHUNK)
      for (let i = start; i < end; i++) or |= words[i]!
      or >>>= 0
    }
    return or
  }
  const { memory } = wasm
  const acc = new Uint32Array(memory.buffer, OR_AT, 4)
  acc.fill(0)
  let or = 0
  for (let done = 0; done < piece.byteLength && or < limit; done += CHUNK) {
    const size = Math.min(CHUNK, piece.byteLength - done)
    memory.set(piece.subarray(done, done + size), AT)
    // Zeros up to the next vector: they change no OR.
    const end = AT + Math.ceil(size / 16) * 16
    memory.fill(0, AT + size, end)
    wasm.or(AT, end)
    or = (acc[0]! | acc[1]! | acc[2]! | acc[3]!) >>> 0
    if (width === 2) or = (or & 0xffff) | (or >>> 16)
  }
  return or
}
