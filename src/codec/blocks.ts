/**
 * Block-wise compression of numeric bytes, as Blosc does it: the bytes are cut into blocks of
 * `BLOCK_SIZE`, each block is byte-shuffled into a reused scratch buffer and compressed on its
 * own, and a block that does not shrink is stored raw. Blocks keep the working set in cache and
 * let a 256 MiB array be compressed without a second full-size buffer: the output is written in
 * place, one block at a time, into a buffer allocated once at its worst-case size (untouched pages
 * of it never become resident). LZ4 blocks go through `lz4.ts`, which compresses straight into that
 * buffer and decompresses into the reused scratch block, so neither direction faults in fresh
 * memory for intermediate results; other codecs go through the codec table.
 *
 * A shuffled block is a handful of byte planes that compress very differently — a smooth float64
 * signal's low five planes are noise (LZ4: 1.004 of their size), its top two almost nothing
 * (0.046, 0.005) — so where the policy asks for it (`planes`: the ndarray format from its version
 * 2) a shuffled LZ4 block whose planes do not all compress is stored plane by plane instead: the
 * noise raw, copied rather than run through LZ4 on put and on get, the rest each as its own LZ4
 * block (by lz4-napi past the first block: its fresh output is only a plane's compressed bytes).
 * A block whose planes all compress (ascending integers) keeps one LZ4 block over all of them,
 * which stores no more.
 *
 * ```
 * block stream   u8 shuffle width (1 = not shuffled) · u32 block size · f64 raw length ·
 *                per block: u8 codec id · u32 stored length · stored bytes
 * LZ4 block      (codec id 1) u32 raw length · the LZ4 block (lz4-napi's size-prefixed framing)
 * planes block   (codec id 128; widths 2, 4 and 8) per byte plane, in order, each a width-th of
 *                the block: u8 coding (0 raw, 1 LZ4) · u32 stored length · the plane's bytes, or
 *                one bare LZ4 block of them (no size prefix: a plane's size is the block's ÷ width)
 * ```
 * All integers little-endian.
 *
 * @since 0.1.0
 */
import * as Lz4Napi from "lz4-napi"
import * as Compression from "./compression.js"
import * as Lz4 from "./lz4.js"
import { shuffle, unshuffle } from "./shuffle.js"
import * as Simd from "./simd.js"

/**
 * Bytes per block. Larger blocks give the shuffled byte streams longer runs: LZ4 on a 64 MiB
 * smooth float64 signal stores 0.758 of it with 256 KiB blocks, 0.738 with 1 MiB, 0.729 with
 * 4 MiB and 0.7241 with 16 MiB, against 0.7238 for the whole buffer at once. 16 MiB costs one
 * scratch buffer of that size, touched once and kept.
 *
 * @since 0.1.0
 * @category constants
 */
export const BLOCK_SIZE = 16 << 20

const STREAM_HEADER = 1 + 4 + 8
const BLOCK_HEADER = 1 + 4
// `writeParallel` rounds each block's slot up to a word; the last one may end 3 bytes past the
// worst case.
const SLOT_SLACK = 3

/**
 * How blocks are compressed.
 *
 * @since 0.1.0
 * @category models
 */
export interface BlockPolicy {
  readonly spec: Compression.CompressionSpec
  readonly level: number | undefined
  readonly shuffle: boolean
  readonly minSize: number
  readonly minSavings: number
  /**
   * Whether a shuffled LZ4 block may be stored plane by plane (codec id 128). Only formats whose
   * version says their readers know that block set it (ndarray 2); arrow and polars do not.
   */
  readonly planes?: boolean | undefined
}

/**
 * Worst-case size of the block stream of `rawLength` bytes: every block stored raw (and 3 bytes
 * `writeParallel` may need to align its last slot).
 *
 * @since 0.1.0
 * @category encoding
 */
export const bound = (rawLength: number, blockSize: number = BLOCK_SIZE): number =>
  STREAM_HEADER + rawLength + BLOCK_HEADER * Math.max(1, Math.ceil(rawLength / blockSize)) + SLOT_SLACK

/**
 * A cursor over an output buffer sized by the caller from `bound`.
 *
 * @since 0.1.0
 * @category models
 */
export class Writer {
  readonly view: DataView
  /** Planes blocks written (codec id 128): a stream without one reads as the ndarray format's version 1. */
  planesBlocks = 0
  constructor(readonly bytes: Uint8Array, public offset: number) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }
  u8(n: number) {
    this.bytes[this.offset++] = n
  }
  u32(n: number) {
    this.view.setUint32(this.offset, n, true)
    this.offset += 4
  }
  f64(n: number) {
    this.view.setFloat64(this.offset, n, true)
    this.offset += 8
  }
  raw(bytes: Uint8Array) {
    this.bytes.set(bytes, this.offset)
    this.offset += bytes.byteLength
  }
}

/**
 * A cursor over stored bytes; every read is bounds-checked and throws `RangeError` on truncation.
 *
 * @since 0.1.0
 * @category models
 */
export class Reader {
  readonly view: DataView
  constructor(readonly bytes: Uint8Array, public offset: number) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }
  u8() {
    return this.view.getUint8(this.offset++)
  }
  u32() {
    const n = this.view.getUint32(this.offset, true)
    this.offset += 4
    return n
  }
  f64() {
    const n = this.view.getFloat64(this.offset, true)
    this.offset += 8
    return n
  }
  take(length: number) {
    if (length < 0 || this.offset + length > this.bytes.byteLength) throw new RangeError("truncated payload")
    const out = this.bytes.subarray(this.offset, this.offset + length)
    this.offset += length
    return out
  }
}

// One scratch block for shuffling, touched once and reused: writing into fresh memory runs at
// ~350 MB/s here (page faults), into touched memory at ~18 GB/s.
let scratch = new Uint8Array(0)
const scratchBlock = (size: number): Uint8Array => {
  if (scratch.byteLength < size) scratch = new Uint8Array(size).fill(0)
  return scratch.subarray(0, size)
}

const LZ4_ID = Compression.byName.lz4.id
// lz4-napi's framing, kept so stored blocks stay readable by either implementation: the block's
// uncompressed size (u32 LE), then the LZ4 block.
const LZ4_PREFIX = 4

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/**
 * Compresses one block with LZ4 straight into `out` (no intermediate buffer); false, with `out`
 * unchanged, when the result would not save `minSavings`.
 */
const writeLz4 = (out: Writer, input: Uint8Array, rawLength: number, minSavings: number): boolean => {
  const limit = Math.floor(rawLength * (1 - minSavings)) - LZ4_PREFIX
  if (limit <= 0) return false
  const at = out.offset + BLOCK_HEADER + LZ4_PREFIX
  const length = Lz4.compress(input, out.bytes, at, limit)
  if (length < 0) return false
  out.u8(LZ4_ID)
  out.u32(length + LZ4_PREFIX)
  out.u32(rawLength)
  out.offset += length
  return true
}

/**
 * Writes the block stream of `src` (elements of `width` bytes). Returns whether any block was
 * compressed. Throws when the codec throws.
 *
 * @since 0.1.0
 * @category encoding
 */
export const write = (
  out: Writer,
  src: Uint8Array,
  width: number,
  policy: BlockPolicy,
  // A multiple of every element width (8), so no element straddles two blocks.
  blockSize: number = BLOCK_SIZE
): boolean => writeChunks(out, [src], src.byteLength, width, policy, blockSize)

/**
 * Reports that `bytes[start, end)` now hold their final contents.
 *
 * @since 0.1.0
 * @category models
 */
export type OnFilled = (start: number, end: number) => void

/**
 * Bytes a deferred copy copies between two reports, each then hashed while it is in cache. In a
 * 64 MiB `none` put, 1 MiB pieces copied and hashed in 13 ms, 256 KiB and 64 KiB pieces in 23 ms
 * (a copy then a hash of the whole: 17 ms).
 */
export const FILL_PIECE = 1 << 20

/**
 * The block stream `write` writes for `src` with no codec (every block stored raw), written
 * except for the blocks' bytes: their headers are in place, their slots left for the returned
 * `fill`. `fill(onFilled)` copies `src` into the slots, `FILL_PIECE` at a time, and after each
 * piece reports the range now final, first to last and contiguous, the first report starting
 * where `out.offset` stood when this was called — so a caller can hash each piece while it is in
 * cache and a store write it while the next is copied. Run once, synchronously: the bytes are
 * `src` as it was at that moment. `out.offset` is left at the stream's end.
 *
 * @since 0.1.0
 * @category encoding
 */
export const writeRawDeferred = (
  out: Writer,
  src: Uint8Array,
  blockSize: number = BLOCK_SIZE
): (onFilled: OnFilled) => void => {
  const total = src.byteLength
  const from = out.offset
  out.u8(1)
  out.u32(blockSize)
  out.f64(total)
  const slots: Array<number> = []
  for (let start = 0; start < total; start += blockSize) {
    const length = Math.min(blockSize, total - start)
    out.u8(0)
    out.u32(length)
    slots.push(out.offset)
    out.offset += length
  }
  const bytes = out.bytes
  const streamEnd = out.offset
  return (onFilled) => {
    let reported = from
    for (let k = 0; k < slots.length; k++) {
      const at = slots[k]!
      const start = k * blockSize
      const end = Math.min(total, start + blockSize)
      for (let p = start; p < end; p += FILL_PIECE) {
        const q = Math.min(end, p + FILL_PIECE)
        bytes.set(src.subarray(p, q), at + p - start)
        onFilled(reported, at + q - start)
        reported = at + q - start
      }
    }
    if (reported < streamEnd) onFilled(reported, streamEnd)
  }
}

// Where a block spanning several chunks is assembled; touched once and reused, like `scratch`.
let staging = new Uint8Array(0)
const stagingBlock = (size: number): Uint8Array => {
  if (staging.byteLength < size) staging = new Uint8Array(size).fill(0)
  return staging.subarray(0, size)
}

/**
 * Writes the block stream of bytes given as consecutive pieces (`total` bytes in all) — an Arrow
 * IPC stream as its writer emits it, mostly views of the table's own column buffers — without
 * joining them first: a block inside one piece is read in place, one spanning pieces is copied
 * into a reused staging block.
 *
 * @since 0.1.0
 * @category encoding
 */
export const writeChunks = (
  out: Writer,
  chunks: ReadonlyArray<Uint8Array>,
  total: number,
  width: number,
  policy: BlockPolicy,
  blockSize: number = BLOCK_SIZE
): boolean => {
  const compressing = policy.spec.id !== 0 && total >= policy.minSize
  const shuffled = compressing && policy.shuffle && width > 1
  out.u8(shuffled ? width : 1)
  out.u32(blockSize)
  out.f64(total)
  let any = false
  let chunk = 0
  let within = 0
  for (let start = 0; start < total; start += blockSize) {
    const length = Math.min(blockSize, total - start)
    while (chunk < chunks.length && within === chunks[chunk]!.byteLength) {
      chunk++
      within = 0
    }
    let block: Uint8Array
    if (chunk < chunks.length && chunks[chunk]!.byteLength - within >= length) {
      block = chunks[chunk]!.subarray(within, within + length)
      within += length
    } else {
      block = stagingBlock(length)
      let filled = 0
      while (filled < length) {
        if (chunk >= chunks.length) throw new RangeError(`pieces hold fewer than ${total} bytes`)
        const piece = chunks[chunk]!
        const take = Math.min(piece.byteLength - within, length - filled)
        block.set(piece.subarray(within, within + take), filled)
        filled += take
        within += take
        if (within === piece.byteLength) {
          chunk++
          within = 0
        }
      }
    }
    if (writeBlock(out, block, width, policy, compressing, shuffled, start > 0)) any = true
  }
  return any
}

const writeBlock = (
  out: Writer,
  block: Uint8Array,
  width: number,
  policy: BlockPolicy,
  compressing: boolean,
  shuffled: boolean,
  // Not the value's first block: its planes may take lz4-napi (see `writePlanes`).
  later: boolean
): boolean => {
  if (compressing) {
    let input = block
    if (shuffled) {
      input = scratchBlock(block.byteLength)
      shuffle(block, input, width)
    }
    if (policy.spec.id === LZ4_ID) {
      const byPlane = shuffled && policy.planes === true && planeWise(width, block.byteLength)
        ? writePlanes(out, input, width, policy.minSavings, later)
        : undefined
      if (byPlane === true) return true
      if (byPlane === undefined && writeLz4(out, input, block.byteLength, policy.minSavings)) return true
    } else {
      const packed = policy.spec.compress(input, policy.level)
      if (packed.byteLength <= block.byteLength * (1 - policy.minSavings)) {
        out.u8(policy.spec.id)
        out.u32(packed.byteLength)
        out.raw(packed)
        return true
      }
    }
  }
  // Not compressed, or not worth it: the original order, cheaper to read.
  out.u8(0)
  out.u32(block.byteLength)
  out.raw(block)
  return false
}

// The sample `mainShare` and `planeCompresses` compress: small next to a block, large enough to
// hold LZ4's window.
const SAMPLE = 64 << 10
let sampleOut = new Uint8Array(0)

const PLANES_ID = 128
const PLANE_HEADER = 1 + 4
const PLANE_RAW = 0
const PLANE_LZ4 = 1
// Below this many bytes a plane's header and a sample of its own cost more than storing the block
// as one LZ4 block loses.
const PLANE_MIN = 4096

/** Whether a block of `length` bytes of `width`-byte elements may be stored plane by plane. */
const planeWise = (width: number, length: number): boolean =>
  (width === 2 || width === 4 || width === 8) && length % width === 0 && length / width >= PLANE_MIN

/**
 * Whether LZ4 saves `minSavings` on the first `SAMPLE` bytes of `plane`: a plane of noise fails
 * within a few microseconds, where compressing all of it would have cost ~2 ms a 2 MiB plane.
 */
const planeCompresses = (plane: Uint8Array, minSavings: number): boolean => {
  const sample = plane.subarray(0, Math.min(SAMPLE, plane.byteLength))
  if (sampleOut.byteLength < Lz4.bound(SAMPLE)) sampleOut = new Uint8Array(Lz4.bound(SAMPLE)).fill(0)
  const limit = Math.floor(sample.byteLength * (1 - minSavings))
  return limit > 0 && Lz4.compress(sample, sampleOut, 0, limit) >= 0
}

/**
 * Writes the shuffled block `planes` plane by plane: each plane whose sample compresses as its
 * own LZ4 block (raw when the whole plane does not save `minSavings` after all), the others raw.
 * `undefined`, with nothing written, when every plane's sample compresses (the caller writes one
 * LZ4 block, as format 1 did: per plane stores the same, 0.0079 of the int32 ramp either way);
 * false, with `out.offset` unchanged, when the planes together do not save `minSavings` of the
 * block (the caller stores it raw). Never writes past the block's header and `minSavings` of its
 * raw length, so it stays within `bound`.
 *
 * The value's first block is compressed by `lz4.ts`, straight into `out`; `later` blocks by
 * lz4-napi, whose output is copied in. On the bench's float64 signal (one 16 MiB block, planes
 * 4–7) `lz4.ts` takes 0.2 / 15.2 / 4.4 / 0.5 ms and stores plane 5 in 0.506 of it, lz4-napi
 * 0.2 / 3.5 / 0.9 / 0.3 ms and 0.709: lz4-napi puts a 64 MiB signal in a quarter of the CPU, and
 * the first block kept on `lz4.ts` keeps it under format 1's stored size (0.714 against 0.718).
 * lz4-napi's fresh output is a plane's compressed size, not a block's, so few pages to fault.
 */
const writePlanes = (
  out: Writer,
  planes: Uint8Array,
  width: number,
  minSavings: number,
  later: boolean
): boolean | undefined => {
  const n = planes.byteLength / width
  const packed: Array<boolean> = []
  for (let p = 0; p < width; p++) packed.push(planeCompresses(planes.subarray(p * n, (p + 1) * n), minSavings))
  if (packed.every(Boolean)) return undefined
  const start = out.offset
  const end = start + BLOCK_HEADER + Math.floor(planes.byteLength * (1 - minSavings))
  let at = start + BLOCK_HEADER
  for (let p = 0; p < width; p++) {
    const plane = planes.subarray(p * n, (p + 1) * n)
    const room = end - at - PLANE_HEADER
    if (packed[p]) {
      const limit = Math.min(Math.floor(n * (1 - minSavings)), room)
      const compress = later ? napiInto : Lz4.compress
      const length = limit > 0 ? compress(plane, out.bytes, at + PLANE_HEADER, limit) : -1
      if (length >= 0) {
        out.bytes[at] = PLANE_LZ4
        out.view.setUint32(at + 1, length, true)
        at += PLANE_HEADER + length
        continue
      }
    }
    if (room < n) return false
    out.bytes[at] = PLANE_RAW
    out.view.setUint32(at + 1, n, true)
    out.bytes.set(plane, at + PLANE_HEADER)
    at += PLANE_HEADER + n
  }
  out.u8(PLANES_ID)
  out.u32(at - start - BLOCK_HEADER)
  out.offset = at
  out.planesBlocks++
  return true
}

/** `Lz4.compress` by lz4-napi: its block without the size prefix, copied into `dst` at `at`. */
const napiInto = (src: Uint8Array, dst: Uint8Array, at: number, limit: number): number => {
  const packed = Lz4Napi.compressSync(asBuffer(src))
  const length = packed.byteLength - LZ4_PREFIX
  if (length > limit) return -1
  dst.set(packed.subarray(LZ4_PREFIX), at)
  return length
}

// Below this stored/raw for the sample, `lz4.ts` beats lz4-napi on a whole block by more than
// the threadpool gains: long matches (ascending ids, runs) are few sequences, which `lz4.ts`
// extends with native comparisons (64 MiB shuffled int32 ramp, 4 blocks: 36 ms thread CPU here
// against ~150 ms for lz4-napi); the smooth float64 signal (0.70) is not.
const MAIN_ONLY_RATIO = 0.2

/**
 * How many of the `blocks` blocks of `src` `writeParallel` compresses on this thread (the first
 * ones; the rest go to the threadpool): all of them when a shuffled sample from the second block
 * compresses below `MAIN_ONLY_RATIO`, else one. lz4-napi compresses a block of the smooth float64
 * signal in ~12 ms of CPU when its output memory is already faulted in, `lz4.ts` in ~35 ms, so the
 * threadpool takes all but the one block this thread keeps to stay under plain shuffle + LZ4's
 * stored size (bench/array-put-steps.ts: 64 MiB float64, one block here 178 ms wall, two 269, four
 * 331; medians of 11 in random order, load 8).
 */
const mainShare = (src: Uint8Array, width: number, shuffled: boolean, blockSize: number, blocks: number): number => {
  const from = blockSize
  const sample = src.subarray(from, Math.min(src.byteLength, from + Math.min(SAMPLE, blockSize)))
  let input = sample
  if (shuffled) {
    input = scratchBlock(blockSize).subarray(0, sample.byteLength)
    shuffle(sample, input, width)
  }
  if (sampleOut.byteLength < Lz4.bound(SAMPLE)) sampleOut = new Uint8Array(Lz4.bound(SAMPLE)).fill(0)
  const length = Lz4.compress(input, sampleOut, 0, Math.floor(sample.byteLength * MAIN_ONLY_RATIO))
  return length >= 0 ? blocks : 1
}

/**
 * Whether the blocks of `src` would be stored plane by plane: some plane of the first block's
 * first `SAMPLE` elements, shuffled, does not compress — the sample `writePlanes` judges that
 * block's planes by.
 */
const planesPay = (src: Uint8Array, width: number, blockSize: number, minSavings: number): boolean => {
  const n = Math.min(SAMPLE, blockSize / width)
  const shuffled = scratchBlock(blockSize).subarray(0, n * width)
  shuffle(src.subarray(0, n * width), shuffled, width)
  for (let p = 0; p < width; p++) {
    if (!planeCompresses(shuffled.subarray(p * n, (p + 1) * n), minSavings)) return true
  }
  return false
}

/**
 * `write` for LZ4 using both cores: the first blocks are compressed on this thread by `lz4.ts`
 * (straight into their place, as `write` does), the others at the same time on libuv's
 * threadpool by lz4-napi's native codec (`compress`). How many stay here is `mainShare`'s
 * choice (or `onMain`, for benchmarks and tests). The same stream, readable by `read`: lz4-napi
 * writes the same size-prefixed LZ4 blocks. Its blocks store a little larger (64 MiB float64
 * signal: 0.724 of raw against 0.702), so keeping a block on this thread also keeps the whole
 * under plain shuffle + LZ4 (0.719 for four blocks).
 *
 * The value is copied before anything runs off this thread: every threadpool block is shuffled
 * (or copied) synchronously into its slot in `out` — where it would sit were every block before
 * it stored raw, rounded up to a word — and this thread's blocks are compressed before the first
 * wait, so a caller changing the array once the put has started cannot tear the stored value.
 * The threadpool reads the slots; each result is written at the running offset, which never
 * reaches the next block's slot. A block that does not save `minSavings` is stored raw,
 * unshuffled from its slot. Other codecs, and values of one block, go through `write`.
 *
 * So do values whose blocks are stored plane by plane (`planesPay`): with LZ4 run only on the
 * planes that compress, this thread writes a 64 MiB float64 signal in less time than the
 * threadpool's fresh output buffers take to fault in, and the value is read in one synchronous pass.
 *
 * @since 0.1.0
 * @category encoding
 */
export const writeParallel = async (
  out: Writer,
  src: Uint8Array,
  width: number,
  policy: BlockPolicy,
  blockSize: number = BLOCK_SIZE,
  onMain?: number
): Promise<boolean> => {
  const total = src.byteLength
  if (policy.spec.id !== LZ4_ID || total < policy.minSize || total <= blockSize) {
    return write(out, src, width, policy, blockSize)
  }
  const shuffled = policy.shuffle && width > 1
  if (
    shuffled && policy.planes === true && planeWise(width, blockSize) &&
    planesPay(src, width, blockSize, policy.minSavings)
  ) {
    return write(out, src, width, policy, blockSize)
  }
  const blocks = Math.ceil(total / blockSize)
  const here = Math.max(1, Math.min(blocks, onMain ?? mainShare(src, width, shuffled, blockSize, blocks)))
  if (here === blocks) return write(out, src, width, policy, blockSize)
  out.u8(shuffled ? width : 1)
  out.u32(blockSize)
  out.f64(total)
  const base = out.offset
  const slots: Array<Uint8Array> = []
  const jobs: Array<Promise<Buffer>> = []
  for (let k = here; k < blocks; k++) {
    const block = src.subarray(k * blockSize, Math.min(total, (k + 1) * blockSize))
    // Where block k's bytes would start were every block before it stored raw (so nothing
    // written for blocks before it, nor its own header, reaches the slot), rounded up to a word
    // for the word-wide shuffle: up to 3 bytes, which `bound` leaves spare at the end.
    const earliest = out.bytes.byteOffset + base + k * (BLOCK_HEADER + blockSize) + BLOCK_HEADER
    const at = earliest + ((4 - (earliest % 4)) % 4) - out.bytes.byteOffset
    const slot = out.bytes.subarray(at, at + block.byteLength)
    if (shuffled) shuffle(block, slot, width)
    else slot.set(block)
    slots.push(slot)
    // Started as soon as its slot is filled: the threadpool works while the next slots are.
    jobs.push(Lz4Napi.compress(asBuffer(slot)))
  }
  // Settled all together: no slot is written to while the threadpool may still read one.
  const pending = Promise.allSettled(jobs)
  let any = false
  for (let k = 0; k < here; k++) {
    const block = src.subarray(k * blockSize, (k + 1) * blockSize)
    if (writeBlock(out, block, width, policy, true, shuffled, k > 0)) any = true
  }
  const packed = await pending
  for (let k = 0; k < slots.length; k++) {
    const result = packed[k]!
    if (result.status === "rejected") throw result.reason
    const slot = slots[k]!
    const length = slot.byteLength
    if (result.value.byteLength <= Math.floor(length * (1 - policy.minSavings))) {
      out.u8(LZ4_ID)
      out.u32(result.value.byteLength)
      out.raw(result.value)
      any = true
      continue
    }
    out.u8(0)
    out.u32(length)
    // The slot may overlap where this block now goes: unshuffle into scratch (or move) first.
    if (shuffled) {
      const plain = scratchBlock(length)
      unshuffle(slot, plain, width)
      out.raw(plain)
    } else {
      const from = slot.byteOffset - out.bytes.byteOffset
      out.bytes.copyWithin(out.offset, from, from + length)
      out.offset += length
    }
  }
  return any
}

/**
 * Reads a block stream into `dst`, which must be exactly the stream's raw length. Throws on
 * corruption (the caller turns that into a `CodecError`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const read = (input: Reader, dst: Uint8Array): void => {
  const { width, blockSize, rawLength } = readStreamHeader(input, dst)
  for (let start = 0; start < rawLength; start += blockSize) {
    readBlock(input, dst.subarray(start, Math.min(rawLength, start + blockSize)), width)
  }
}

/**
 * `read` into a result whose pages another thread may still be faulting in (`Prefault.help`):
 * each block, and each piece of a block stored raw, waits for `ready(end)` before it writes
 * below `end`. The same checks and the same bytes as `read`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const readAsync = async (
  input: Reader,
  dst: Uint8Array,
  ready: (end: number) => Promise<void> | undefined,
  piece: number
): Promise<void> => {
  const { width, blockSize, rawLength } = readStreamHeader(input, dst)
  for (let start = 0; start < rawLength; start += blockSize) {
    const end = Math.min(rawLength, start + blockSize)
    if (input.view.getUint8(input.offset) === 0) {
      // Stored raw: copied piece by piece, so the copy starts before the whole block is faulted in.
      input.u8()
      const stored = input.take(input.u32())
      if (stored.byteLength !== end - start) throw new RangeError("raw block has the wrong length")
      for (let at = start; at < end; at += piece) {
        const to = Math.min(end, at + piece)
        const wait = ready(to)
        if (wait !== undefined) await wait
        dst.set(stored.subarray(at - start, to - start), at)
      }
      continue
    }
    const wait = ready(end)
    if (wait !== undefined) await wait
    readBlock(input, dst.subarray(start, end), width)
  }
}

/**
 * Where the result of the block stream at `input` would rather not be faulted in by the decoder
 * itself: above the first block when it is compressed (decoding costs more than faulting), above
 * half the bytes when it is stored raw (copying costs about what faulting does). Reads nothing.
 *
 * @since 0.1.0
 * @category decoding
 */
export const helpFrom = (input: Reader, rawLength: number): number => {
  const at = input.offset
  if (at + STREAM_HEADER + 1 > input.bytes.byteLength) return rawLength
  const blockSize = input.view.getUint32(at + 1, true)
  const half = Math.floor(rawLength / 2)
  return input.view.getUint8(at + STREAM_HEADER) === 0 ? half : Math.min(blockSize, half)
}

/** More blocks than this in a stream stored raw are read from one buffer (a foreign block size). */
const MAX_PLACED_BLOCKS = 4096

/**
 * How a block stream stored raw — every block codec 0, as `write` leaves it without a codec or
 * when no block shrinks — is read so that its bytes land in `dst` (exactly its raw length) with no
 * copy: `views` are the stream's header with the first block's, then each block's bytes (the range
 * of `dst` it decodes to) and the next block's header, the headers in small buffers of their own;
 * `length` is the stream's. Planned from the headers at `input` (read without moving it);
 * `undefined` when they are not all there, or the stream is not raw or not `dst`'s length.
 * `check()`, once the views hold the stream, throws unless every header reads as planned.
 *
 * @since 0.1.0
 * @category decoding
 */
export const placeRaw = (
  input: Reader,
  dst: Uint8Array
): { readonly views: ReadonlyArray<Uint8Array>; readonly length: number; readonly check: () => void } | undefined => {
  const at = input.offset
  const first = STREAM_HEADER + BLOCK_HEADER
  if (at + first > input.bytes.byteLength) return undefined
  // A copy (`Buffer#slice` would be a view of the caller's bytes).
  const planned = new Uint8Array(input.bytes.subarray(at, at + first))
  const header = new DataView(planned.buffer)
  const blockSize = header.getUint32(1, true)
  const rawLength = header.getFloat64(5, true)
  if (header.getUint8(0) === 0 || blockSize === 0 || rawLength !== dst.byteLength || rawLength === 0) return undefined
  const blocks = Math.ceil(rawLength / blockSize)
  if (blocks > MAX_PLACED_BLOCKS || !blockHeaderIs(header, STREAM_HEADER, Math.min(blockSize, rawLength))) {
    return undefined
  }
  const head = new Uint8Array(first)
  const views: Array<Uint8Array> = [head]
  const headers: Array<Uint8Array> = []
  for (let start = 0; start < rawLength; start += blockSize) {
    if (start > 0) {
      const next = new Uint8Array(BLOCK_HEADER)
      headers.push(next)
      views.push(next)
    }
    views.push(dst.subarray(start, Math.min(rawLength, start + blockSize)))
  }
  const check = () => {
    for (let i = 0; i < first; i++) {
      if (head[i] !== planned[i]) throw new RangeError("block stream header differs from the one planned from")
    }
    headers.forEach((bytes, k) => {
      const start = (k + 1) * blockSize
      if (!blockHeaderIs(new DataView(bytes.buffer), 0, Math.min(blockSize, rawLength - start))) {
        throw new RangeError(`block ${k + 1} is not stored raw at its planned length`)
      }
    })
  }
  return { views, length: STREAM_HEADER + blocks * BLOCK_HEADER + rawLength, check }
}

/**
 * Whether the block stream at `input` can be decoded into `dst` while it sits in `dst`'s own memory
 * (`input.bytes` a view of the same buffer: a reader that read the compressed bytes into the tail of
 * their result): every block's output must end at or before the header of the next, so no block
 * overwrites input not yet read. A block's own input is always read whole before its output is
 * written — into the SIMD module's memory, the scratch block or a codec's new buffer, or, stored
 * raw, by a copy that allows the overlap — except an LZ4 block of a stream that is not shuffled,
 * decoded straight into its target: such a stream is never decoded in place. Reads only headers,
 * bounds-checked (a damaged one throws `RangeError`, as `read` would).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodableInPlace = (input: Reader, dst: Uint8Array): boolean => {
  if (input.bytes.buffer !== dst.buffer) return false
  const walk = new Reader(input.bytes, input.offset)
  const { width, blockSize, rawLength } = readStreamHeader(walk, dst)
  if (width === 1) return false
  // Where `walk` stands, as an offset into `dst`.
  const shift = input.bytes.byteOffset - dst.byteOffset
  for (let start = 0; start < rawLength; start += blockSize) {
    walk.u8()
    walk.take(walk.u32())
    const end = Math.min(rawLength, start + blockSize)
    if (end < rawLength && shift + walk.offset < end) return false
  }
  return true
}

/** Whether the block header at `at` is a raw block of `length` bytes. */
const blockHeaderIs = (view: DataView, at: number, length: number): boolean =>
  view.getUint8(at) === 0 && view.getUint32(at + 1, true) === length

const readStreamHeader = (input: Reader, dst: Uint8Array) => {
  const width = input.u8()
  const blockSize = input.u32()
  const rawLength = input.f64()
  if (width === 0 || blockSize === 0) throw new RangeError("bad block stream header")
  if (rawLength !== dst.byteLength) {
    throw new RangeError(`block stream holds ${rawLength} bytes, expected ${dst.byteLength}`)
  }
  return { width, blockSize, rawLength }
}

/** The element width when the SIMD unshuffle takes it (`undefined`: the JS loops). */
const simdWidth = (width: number): 2 | 4 | 8 | undefined =>
  Simd.active() && (width === 2 || width === 4 || width === 8) ? width : undefined

/**
 * A block stored plane by plane into `target`: each plane decoded (or copied) into its place among
 * the shuffled planes — the SIMD module's memory, or the touched scratch block for the JS loops —
 * then unshuffled as a block stored whole is. Every plane must be exactly its size, and the planes
 * exactly the stored bytes.
 */
const readPlanes = (stored: Uint8Array, target: Uint8Array, width: number): void => {
  const size = target.byteLength
  if ((width !== 2 && width !== 4 && width !== 8) || size % width !== 0) {
    throw new RangeError(`block of ${size} bytes stored by planes in a stream of width ${width}`)
  }
  const n = size / width
  const simd = simdWidth(width)
  const plain = simd === undefined ? scratchBlock(size) : undefined
  const input = new Reader(stored, 0)
  for (let p = 0; p < width; p++) {
    const coding = input.u8()
    const bytes = input.take(input.u32())
    if (coding === PLANE_RAW) {
      if (bytes.byteLength !== n) throw new RangeError(`raw plane of ${bytes.byteLength} bytes, expected ${n}`)
      // A fresh view of the module's memory each time: decoding a plane may have grown (moved) it.
      if (plain === undefined) Simd.planes(size).set(bytes, p * n)
      else plain.set(bytes, p * n)
    } else if (coding === PLANE_LZ4) {
      if (plain === undefined) Simd.decompressToPlane(bytes, size, p * n, n)
      else Lz4.decompress(bytes, plain.subarray(p * n, (p + 1) * n))
    } else {
      throw new RangeError(`unknown plane coding ${coding}`)
    }
  }
  if (input.offset !== stored.byteLength) throw new RangeError("planes block holds bytes past its last plane")
  if (simd !== undefined) Simd.unshuffle(target, simd)
  else unshuffle(plain!, target, width)
}

/** One block into `target` (exactly its raw length). */
const readBlock = (input: Reader, target: Uint8Array, width: number): void => {
  const codecId = input.u8()
  const stored = input.take(input.u32())
  if (codecId === 0) {
    if (stored.byteLength !== target.byteLength) throw new RangeError("raw block has the wrong length")
    target.set(stored)
    return
  }
  if (codecId === LZ4_ID) {
    Compression.checkLz4Size(stored, target.byteLength)
    const simd = simdWidth(width)
    if (simd !== undefined) {
      // Decoded and unshuffled in the WebAssembly module's memory, copied out chunk by chunk.
      Simd.decompressToPlanes(stored.subarray(LZ4_PREFIX), target.byteLength)
      Simd.unshuffle(target, simd)
      return
    }
    // Straight into the result when nothing is shuffled; else into the touched scratch block.
    const plain = width === 1 ? target : scratchBlock(target.byteLength)
    Lz4.decompress(stored.subarray(LZ4_PREFIX), plain)
    if (width !== 1) unshuffle(plain, target, width)
    return
  }
  if (codecId === PLANES_ID) return readPlanes(stored, target, width)
  const spec = Compression.byId[codecId]
  if (spec === undefined || !spec.available) {
    throw new RangeError(`block compressed with unknown or unavailable codec ${codecId}`)
  }
  const plain = spec.decompress(stored, target.byteLength)
  if (plain.byteLength !== target.byteLength) throw new RangeError("block decompressed to the wrong length")
  const simd = simdWidth(width)
  if (width === 1) {
    target.set(plain)
  } else if (simd !== undefined) {
    Simd.planes(plain.byteLength).set(plain)
    Simd.unshuffle(target, simd)
  } else if ((plain.byteOffset & 3) === 0) {
    unshuffle(plain, target, width)
  } else {
    // The word-wide unshuffle needs 4-byte alignment; one memcpy into touched scratch is cheap.
    const aligned = scratchBlock(plain.byteLength)
    aligned.set(plain)
    unshuffle(aligned, target, width)
  }
}
