/**
 * Blosc-style byte shuffle: the bytes of `n` elements of `size` bytes are regrouped so that byte 0
 * of every element comes first, then byte 1 of every element, and so on. Numeric arrays whose
 * neighbours are close (smooth signals, ascending ids) then show long runs in the high bytes that
 * LZ4 finds; plain LZ4 on the same bytes finds nothing (ratio 1.004 on a float64 signal).
 *
 * Speed is the point of this file. A byte-at-a-time loop runs at ~130–800 MB/s here, slower than
 * LZ4 itself. The loops below read 4 elements at a time through `Uint32Array` views and transpose
 * 4×4 byte blocks in registers, so every memory access is a 32-bit word: ~3.4 GB/s for 8-byte
 * elements on this machine (bench/formats.ts prints the comparison). Unaligned inputs and the
 * tail (fewer than 4 elements) take the byte loop. Where WebAssembly SIMD runs, `shuffle` itself
 * goes through `simdShuffle.ts` (16 bytes per operation); `unshuffle` is `simd.ts`'s, in the
 * block decoder.
 *
 * @since 0.1.0
 */
import * as SimdShuffle from "./simdShuffle.js"

/**
 * Shuffles `src` into `dst` (same length, a multiple of `size`; they must not overlap).
 *
 * @since 0.1.0
 * @category shuffle
 */
export const shuffle = (src: Uint8Array, dst: Uint8Array, size: number): void => {
  const n = Math.floor(src.length / size)
  if ((size === 2 || size === 4 || size === 8) && n >= SIMD_MIN && SimdShuffle.active()) {
    // 16 elements per step in WebAssembly SIMD (simdShuffle.ts); the last few byte by byte.
    const wide = n & ~15
    SimdShuffle.shuffleWide(src, dst, size, n, wide)
    shuffleBytes(src, dst, size, wide, n)
    copyLeftover(src, dst, n * size)
    return
  }
  shuffleJs(src, dst, size)
}

// Below this many elements the JS loops cost less than a call into the module per chunk.
const SIMD_MIN = 64

/**
 * `shuffle` with the JS loops only (no WebAssembly), exported for the tests' and the benchmark's
 * comparison.
 *
 * @since 0.1.0
 * @category shuffle
 */
export const shuffleJs = (src: Uint8Array, dst: Uint8Array, size: number): void => {
  const n = Math.floor(src.length / size)
  if (size <= 1 || n < 4) {
    dst.set(src)
    if (size > 1) shuffleBytes(src, dst, size, 0, n)
    return
  }
  const wide = n & ~3
  if (aligned(src) && aligned(dst)) {
    if (size === 8) shuffle8(src, dst, n, wide)
    else if (size === 4) shuffle4(src, dst, n, wide)
    else if (size === 2) shuffle2(src, dst, n, wide)
    shuffleBytes(src, dst, size, size === 8 || size === 4 || size === 2 ? wide : 0, n)
  } else {
    shuffleBytes(src, dst, size, 0, n)
  }
  copyLeftover(src, dst, n * size)
}

/**
 * The inverse of `shuffle`.
 *
 * @since 0.1.0
 * @category shuffle
 */
export const unshuffle = (src: Uint8Array, dst: Uint8Array, size: number): void => {
  const n = Math.floor(src.length / size)
  if (size <= 1 || n < 4) {
    dst.set(src)
    if (size > 1) unshuffleBytes(src, dst, size, 0, n)
    return
  }
  const wide = n & ~3
  if (aligned(src) && aligned(dst)) {
    if (size === 8) unshuffle8(src, dst, n, wide)
    else if (size === 4) unshuffle4(src, dst, n, wide)
    else if (size === 2) unshuffle2(src, dst, n, wide)
    unshuffleBytes(src, dst, size, size === 8 || size === 4 || size === 2 ? wide : 0, n)
  } else {
    unshuffleBytes(src, dst, size, 0, n)
  }
  copyLeftover(src, dst, n * size)
}

/**
 * The byte-at-a-time loop, exported for the benchmark's comparison.
 *
 * @since 0.1.0
 * @category shuffle
 */
export const shuffleNaive = (src: Uint8Array, dst: Uint8Array, size: number): void => {
  const n = Math.floor(src.length / size)
  shuffleBytes(src, dst, size, 0, n)
  copyLeftover(src, dst, n * size)
}

const aligned = (bytes: Uint8Array) => (bytes.byteOffset & 3) === 0

const words = (bytes: Uint8Array, count: number) => new Uint32Array(bytes.buffer, bytes.byteOffset, count)

// A length that is not a multiple of `size` keeps its last bytes in place, as Blosc does.
const copyLeftover = (src: Uint8Array, dst: Uint8Array, from: number) => {
  for (let i = from; i < src.length; i++) dst[i] = src[i]!
}

/** Elements [from, to) byte by byte: the tail of the wide loops, and unaligned inputs. */
const shuffleBytes = (src: Uint8Array, dst: Uint8Array, size: number, from: number, n: number) => {
  for (let b = 0; b < size; b++) {
    const base = b * n
    for (let i = from; i < n; i++) dst[base + i] = src[i * size + b]!
  }
}

const unshuffleBytes = (src: Uint8Array, dst: Uint8Array, size: number, from: number, n: number) => {
  for (let b = 0; b < size; b++) {
    const base = b * n
    for (let i = from; i < n; i++) dst[i * size + b] = src[base + i]!
  }
}

// The 4×4 byte transpose: word k of the result holds byte k of a, b, c, d (low to high). It is
// its own inverse, which is why unshuffle uses the same expressions.
//   t0 = a.b0 b.b0 c.b0 d.b0     t1 = a.b1 b.b1 c.b1 d.b1   …

const shuffle8 = (src: Uint8Array, dst: Uint8Array, n: number, wide: number) => {
  // Output stream b starts at byte b*n: word aligned only when n is a multiple of 4.
  if ((n & 3) !== 0) return shuffle8Unaligned(src, dst, n, wide)
  const w = words(src, n * 2)
  const q = n >>> 2
  const out = words(dst, n * 2)
  for (let k = 0; k < q; k++) {
    const p = k << 3
    const a0 = w[p]!, a1 = w[p + 2]!, a2 = w[p + 4]!, a3 = w[p + 6]!
    const b0 = w[p + 1]!, b1 = w[p + 3]!, b2 = w[p + 5]!, b3 = w[p + 7]!
    out[k] = (a0 & 0xff) | ((a1 & 0xff) << 8) | ((a2 & 0xff) << 16) | (a3 << 24)
    out[q + k] = ((a0 >>> 8) & 0xff) | (a1 & 0xff00) | ((a2 & 0xff00) << 8) | ((a3 & 0xff00) << 16)
    out[2 * q + k] = ((a0 >>> 16) & 0xff) | ((a1 >>> 8) & 0xff00) | (a2 & 0xff0000) | ((a3 & 0xff0000) << 8)
    out[3 * q + k] = (a0 >>> 24) | ((a1 >>> 16) & 0xff00) | ((a2 >>> 8) & 0xff0000) | (a3 & 0xff000000)
    out[4 * q + k] = (b0 & 0xff) | ((b1 & 0xff) << 8) | ((b2 & 0xff) << 16) | (b3 << 24)
    out[5 * q + k] = ((b0 >>> 8) & 0xff) | (b1 & 0xff00) | ((b2 & 0xff00) << 8) | ((b3 & 0xff00) << 16)
    out[6 * q + k] = ((b0 >>> 16) & 0xff) | ((b1 >>> 8) & 0xff00) | (b2 & 0xff0000) | ((b3 & 0xff0000) << 8)
    out[7 * q + k] = (b0 >>> 24) | ((b1 >>> 16) & 0xff00) | ((b2 >>> 8) & 0xff0000) | (b3 & 0xff000000)
  }
}

const unshuffle8 = (src: Uint8Array, dst: Uint8Array, n: number, wide: number) => {
  if ((n & 3) !== 0) return unshuffle8Unaligned(src, dst, n, wide)
  const q = n >>> 2
  const w = words(src, n * 2)
  const out = words(dst, n * 2)
  for (let k = 0; k < q; k++) {
    const p = k << 3
    const a0 = w[k]!, a1 = w[q + k]!, a2 = w[2 * q + k]!, a3 = w[3 * q + k]!
    const b0 = w[4 * q + k]!, b1 = w[5 * q + k]!, b2 = w[6 * q + k]!, b3 = w[7 * q + k]!
    out[p] = (a0 & 0xff) | ((a1 & 0xff) << 8) | ((a2 & 0xff) << 16) | (a3 << 24)
    out[p + 2] = ((a0 >>> 8) & 0xff) | (a1 & 0xff00) | ((a2 & 0xff00) << 8) | ((a3 & 0xff00) << 16)
    out[p + 4] = ((a0 >>> 16) & 0xff) | ((a1 >>> 8) & 0xff00) | (a2 & 0xff0000) | ((a3 & 0xff0000) << 8)
    out[p + 6] = (a0 >>> 24) | ((a1 >>> 16) & 0xff00) | ((a2 >>> 8) & 0xff0000) | (a3 & 0xff000000)
    out[p + 1] = (b0 & 0xff) | ((b1 & 0xff) << 8) | ((b2 & 0xff) << 16) | (b3 << 24)
    out[p + 3] = ((b0 >>> 8) & 0xff) | (b1 & 0xff00) | ((b2 & 0xff00) << 8) | ((b3 & 0xff00) << 16)
    out[p + 5] = ((b0 >>> 16) & 0xff) | ((b1 >>> 8) & 0xff00) | (b2 & 0xff0000) | ((b3 & 0xff0000) << 8)
    out[p + 7] = (b0 >>> 24) | ((b1 >>> 16) & 0xff00) | ((b2 >>> 8) & 0xff0000) | (b3 & 0xff000000)
  }
}

// When n is not a multiple of 4 the output streams are not word aligned: read wide, write bytes.
const shuffle8Unaligned = (src: Uint8Array, dst: Uint8Array, n: number, wide: number) => {
  const w = words(src, n * 2)
  for (let i = 0; i < wide; i++) {
    const lo = w[2 * i]!, hi = w[2 * i + 1]!
    dst[i] = lo
    dst[n + i] = lo >>> 8
    dst[2 * n + i] = lo >>> 16
    dst[3 * n + i] = lo >>> 24
    dst[4 * n + i] = hi
    dst[5 * n + i] = hi >>> 8
    dst[6 * n + i] = hi >>> 16
    dst[7 * n + i] = hi >>> 24
  }
}

const unshuffle8Unaligned = (src: Uint8Array, dst: Uint8Array, n: number, wide: number) => {
  const out = words(dst, n * 2)
  for (let i = 0; i < wide; i++) {
    out[2 * i] = src[i]! | (src[n + i]! << 8) | (src[2 * n + i]! << 16) | (src[3 * n + i]! << 24)
    out[2 * i + 1] = src[4 * n + i]! | (src[5 * n + i]! << 8) | (src[6 * n + i]! << 16) | (src[7 * n + i]! << 24)
  }
}

const shuffle4 = (src: Uint8Array, dst: Uint8Array, n: number, wide: number) => {
  const w = words(src, n)
  if ((n & 3) !== 0) {
    for (let i = 0; i < wide; i++) {
      const a = w[i]!
      dst[i] = a
      dst[n + i] = a >>> 8
      dst[2 * n + i] = a >>> 16
      dst[3 * n + i] = a >>> 24
    }
    return
  }
  const q = n >>> 2
  const out = words(dst, n)
  for (let k = 0; k < q; k++) {
    const p = k << 2
    const a0 = w[p]!, a1 = w[p + 1]!, a2 = w[p + 2]!, a3 = w[p + 3]!
    out[k] = (a0 & 0xff) | ((a1 & 0xff) << 8) | ((a2 & 0xff) << 16) | (a3 << 24)
    out[q + k] = ((a0 >>> 8) & 0xff) | (a1 & 0xff00) | ((a2 & 0xff00) << 8) | ((a3 & 0xff00) << 16)
    out[2 * q + k] = ((a0 >>> 16) & 0xff) | ((a1 >>> 8) & 0xff00) | (a2 & 0xff0000) | ((a3 & 0xff0000) << 8)
    out[3 * q + k] = (a0 >>> 24) | ((a1 >>> 16) & 0xff00) | ((a2 >>> 8) & 0xff0000) | (a3 & 0xff000000)
  }
}

const unshuffle4 = (src: Uint8Array, dst: Uint8Array, n: number, wide: number) => {
  const out = words(dst, n)
  if ((n & 3) !== 0) {
    for (let i = 0; i < wide; i++) {
      out[i] = src[i]! | (src[n + i]! << 8) | (src[2 * n + i]! << 16) | (src[3 * n + i]! << 24)
    }
    return
  }
  const q = n >>> 2
  const w = words(src, n)
  for (let k = 0; k < q; k++) {
    const p = k << 2
    const a0 = w[k]!, a1 = w[q + k]!, a2 = w[2 * q + k]!, a3 = w[3 * q + k]!
    out[p] = (a0 & 0xff) | ((a1 & 0xff) << 8) | ((a2 & 0xff) << 16) | (a3 << 24)
    out[p + 1] = ((a0 >>> 8) & 0xff) | (a1 & 0xff00) | ((a2 & 0xff00) << 8) | ((a3 & 0xff00) << 16)
    out[p + 2] = ((a0 >>> 16) & 0xff) | ((a1 >>> 8) & 0xff00) | (a2 & 0xff0000) | ((a3 & 0xff0000) << 8)
    out[p + 3] = (a0 >>> 24) | ((a1 >>> 16) & 0xff00) | ((a2 >>> 8) & 0xff0000) | (a3 & 0xff000000)
  }
}

// 2-byte elements: read two elements per word, write bytes (the two streams are rarely both
// word aligned, and this already runs several times faster than the byte loop).
const shuffle2 = (src: Uint8Array, dst: Uint8Array, n: number, wide: number) => {
  const w = words(src, n >>> 1)
  for (let i = 0; i < wide; i += 2) {
    const a = w[i >>> 1]!
    dst[i] = a
    dst[i + 1] = a >>> 16
    dst[n + i] = a >>> 8
    dst[n + i + 1] = a >>> 24
  }
}

const unshuffle2 = (src: Uint8Array, dst: Uint8Array, n: number, wide: number) => {
  const out = words(dst, n >>> 1)
  for (let i = 0; i < wide; i += 2) {
    out[i >>> 1] = src[i]! | (src[n + i]! << 8) | (src[i + 1]! << 16) | (src[n + i + 1]! << 24)
  }
}
