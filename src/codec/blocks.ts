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
 * ```
 * block stream   u8 shuffle width (1 = not shuffled) · u32 block size · f64 raw length ·
 *                per block: u8 codec id · u32 stored length · stored bytes
 * ```
 * All integers little-endian.
 *
 * @since 0.1.0
 */
import * as Compression from "./compression.js"
import * as Lz4 from "./lz4.js"
import { shuffle, unshuffle } from "./shuffle.js"

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
}

/**
 * Worst-case size of the block stream of `rawLength` bytes: every block stored raw.
 *
 * @since 0.1.0
 * @category encoding
 */
export const bound = (rawLength: number, blockSize: number = BLOCK_SIZE): number =>
  STREAM_HEADER + rawLength + BLOCK_HEADER * Math.max(1, Math.ceil(rawLength / blockSize))

/**
 * A cursor over an output buffer sized by the caller from `bound`.
 *
 * @since 0.1.0
 * @category models
 */
export class Writer {
  readonly view: DataView
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
    if (writeBlock(out, block, width, policy, compressing, shuffled)) any = true
  }
  return any
}

const writeBlock = (
  out: Writer,
  block: Uint8Array,
  width: number,
  policy: BlockPolicy,
  compressing: boolean,
  shuffled: boolean
): boolean => {
  if (compressing) {
    let input = block
    if (shuffled) {
      input = scratchBlock(block.byteLength)
      shuffle(block, input, width)
    }
    if (policy.spec.id === LZ4_ID) {
      if (writeLz4(out, input, block.byteLength, policy.minSavings)) return true
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

/**
 * Reads a block stream into `dst`, which must be exactly the stream's raw length. Throws on
 * corruption (the caller turns that into a `CodecError`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const read = (input: Reader, dst: Uint8Array): void => {
  const width = input.u8()
  const blockSize = input.u32()
  const rawLength = input.f64()
  if (width === 0 || blockSize === 0) throw new RangeError("bad block stream header")
  if (rawLength !== dst.byteLength) {
    throw new RangeError(`block stream holds ${rawLength} bytes, expected ${dst.byteLength}`)
  }
  for (let start = 0; start < rawLength; start += blockSize) {
    const target = dst.subarray(start, Math.min(rawLength, start + blockSize))
    const codecId = input.u8()
    const stored = input.take(input.u32())
    if (codecId === 0) {
      if (stored.byteLength !== target.byteLength) throw new RangeError("raw block has the wrong length")
      target.set(stored)
      continue
    }
    if (codecId === LZ4_ID) {
      Compression.checkLz4Size(stored, target.byteLength)
      // Straight into the result when nothing is shuffled; else into the touched scratch block.
      const plain = width === 1 ? target : scratchBlock(target.byteLength)
      Lz4.decompress(stored.subarray(LZ4_PREFIX), plain)
      if (width !== 1) unshuffle(plain, target, width)
      continue
    }
    const spec = Compression.byId[codecId]
    if (spec === undefined || !spec.available) {
      throw new RangeError(`block compressed with unknown or unavailable codec ${codecId}`)
    }
    const plain = spec.decompress(stored, target.byteLength)
    if (plain.byteLength !== target.byteLength) throw new RangeError("block decompressed to the wrong length")
    if (width === 1) {
      target.set(plain)
    } else if ((plain.byteOffset & 3) === 0) {
      unshuffle(plain, target, width)
    } else {
      // The word-wide unshuffle needs 4-byte alignment; one memcpy into touched scratch is cheap.
      const aligned = scratchBlock(plain.byteLength)
      aligned.set(plain)
      unshuffle(aligned, target, width)
    }
  }
}
