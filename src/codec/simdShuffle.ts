/**
 * The byte shuffle of `shuffle.ts` in WebAssembly SIMD, the put side's counterpart of `simd.ts`'s
 * unshuffle: 16 elements at a time, as a transpose of W vectors of 16 bytes (16 whole elements)
 * into W vectors of one byte plane each, done in log2(W) rounds of byte de-interleaves
 * (`i8x16.shuffle` taking the even, then the odd bytes of two vectors). The JS loops move 4 bytes
 * per operation and run at ~1 GB/s here; this moves 16.
 *
 * A module reads only its own linear memory, so elements go through it one cache-sized chunk at a
 * time: a chunk of elements is copied in, shuffled into W plane pieces inside the module, and each
 * piece copied out to its place in the caller's planes while still in cache. Caller memory stays
 * ordinary typed arrays. The module (a few hundred bytes) is built at load time from its
 * instructions with `simd.ts`'s encoder; where WebAssembly SIMD is missing, `available` is false
 * and `shuffle.ts` keeps its JS loops.
 *
 * ```
 * shuffleW(src, dst, stride, count)   W ∈ {2, 4, 8}; count a multiple of 16
 *   for i in 0, 16 … count:  16 elements at src + W·i  →  plane p's 16 bytes at dst + p·stride + i
 * ```
 *
 * @since 0.1.0
 */
import { builder } from "./simd.js"

const { I32, name, op, section, uleb, V128, vector } = builder

// De-interleave the bytes of two vectors (32 bytes): the even ones, then the odd ones.
const EVEN = Array.from({ length: 16 }, (_, i) => 2 * i)
const ODD = EVEN.map((lane) => lane + 1)

/** The body of shuffleW: params src 0, dst 1, stride 2, count 3; i 4; vectors from 5. */
const shuffleBody = (width: number): Array<number> => {
  const rounds = Math.log2(width)
  const a = (k: number) => 5 + k
  const b = (k: number) => 5 + width + k
  const code: Array<number> = [...op.block, ...op.get(3), ...op.eqz, ...op.brIf(0), ...op.loop]
  for (let j = 0; j < width; j++) code.push(...op.get(0), ...op.load(16 * j), ...op.set(a(j)))
  // Each round splits vectors 2j, 2j + 1 into their even bytes (to j) and odd bytes (to j + W/2):
  // after log2(W) rounds vector p holds byte p of the 16 elements (the inverse of simd.ts's rounds).
  let from = a
  let to = b
  for (let round = 0; round < rounds; round++) {
    for (let j = 0; j < width / 2; j++) {
      for (const [k, lanes] of [[j, EVEN], [j + width / 2, ODD]] as const) {
        code.push(...op.get(from(2 * j)), ...op.get(from(2 * j + 1)), ...op.shuffle(lanes), ...op.set(to(k)))
      }
    }
    ;[from, to] = [to, from]
  }
  for (let p = 0; p < width; p++) {
    code.push(...op.get(1), ...op.get(4), ...op.add, ...op.get(2), ...op.const(p), ...op.mul, ...op.add)
    code.push(...op.get(from(p)), ...op.store(0))
  }
  code.push(...op.get(0), ...op.const(16 * width), ...op.add, ...op.set(0))
  code.push(...op.get(4), ...op.const(16), ...op.add, ...op.set(4))
  code.push(...op.get(4), ...op.get(3), ...op.ltU, ...op.brIf(0), ...op.end, ...op.end, ...op.end)
  const body = [...vector([[1, I32], [2 * width, V128]]), ...code]
  return [...uleb(body.length), ...body]
}

const WIDTHS = [2, 4, 8] as const

/**
 * Bytes of elements shuffled per chunk: the chunk in and its planes out stay in the L2 cache
 * between being copied in, shuffled and copied out.
 *
 * @since 0.1.0
 * @category constants
 */
export const CHUNK = 128 << 10

// Memory layout: [0, CHUNK) the chunk of elements; [CHUNK, 2·CHUNK) its planes. One page is 64 KiB.
const PAGES = (2 * CHUNK) >> 16

const moduleBytes = (): Uint8Array =>
  new Uint8Array([
    ...builder.MAGIC_AND_VERSION,
    ...section(1, vector([[0x60, ...vector([[I32], [I32], [I32], [I32]]), 0]])),
    ...section(3, vector(WIDTHS.map(() => [0]))),
    ...section(5, vector([[0x00, ...uleb(PAGES)]])),
    ...section(
      7,
      vector([[...name("memory"), 0x02, 0], ...WIDTHS.map((w, i) => [...name(`shuffle${w}`), 0x00, i])])
    ),
    ...section(10, vector(WIDTHS.map(shuffleBody)))
  ])

type Kernel = (src: number, dst: number, stride: number, count: number) => void

const WebAssembly = builder.WebAssembly

interface Instance {
  readonly memory: Uint8Array
  readonly kernels: Record<number, Kernel>
}

const instantiate = (): Instance | null => {
  try {
    const bytes = moduleBytes()
    if (WebAssembly === undefined || !WebAssembly.validate(bytes)) return null
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports
    const kernels: Record<number, Kernel> = {}
    for (const width of WIDTHS) kernels[width] = exports[`shuffle${width}`] as Kernel
    // The memory never grows, so one view of it stays valid; touched once here.
    const memory = new Uint8Array((exports.memory as { readonly buffer: ArrayBuffer }).buffer).fill(0)
    return { memory, kernels }
  } catch {
    return null
  }
}

const wasm = instantiate()

/**
 * Whether this runtime runs the module (WebAssembly with SIMD).
 *
 * @since 0.1.0
 * @category simd
 */
export const available: boolean = wasm !== null

let enabled = available

/**
 * Whether `shuffle.ts` uses the module: `available` unless turned off with `enable(false)`
 * (benchmarks and tests compare both paths in one process).
 *
 * @since 0.1.0
 * @category simd
 */
export const active = (): boolean => enabled

/**
 * Turns the module's use on (where available) or off.
 *
 * @since 0.1.0
 * @category simd
 */
export const enable = (on: boolean): void => {
  enabled = on && available
}

/**
 * Shuffles the first `wide` elements of `src` (a multiple of 16; `n` elements of `width` ∈ {2, 4,
 * 8} bytes in all) into the planes of `dst`: byte b of element i goes to `dst[b·n + i]`. The rest
 * (the last elements, the bytes past them) is the caller's. Needs `available`.
 *
 * @since 0.1.0
 * @category simd
 */
export const shuffleWide = (src: Uint8Array, dst: Uint8Array, width: 2 | 4 | 8, n: number, wide: number): void => {
  const { kernels, memory } = wasm!
  const kernel = kernels[width]!
  const perChunk = CHUNK / width
  for (let first = 0; first < wide; first += perChunk) {
    const count = Math.min(perChunk, wide - first)
    memory.set(src.subarray(first * width, (first + count) * width), 0)
    kernel(0, CHUNK, count, count)
    for (let p = 0; p < width; p++) {
      const at = CHUNK + p * count
      dst.set(memory.subarray(at, at + count), p * n + first)
    }
  }
}
