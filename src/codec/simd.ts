/**
 * The byte unshuffle of `shuffle.ts` in WebAssembly SIMD: 16 elements at a time, as a transpose
 * of W vectors of 16 bytes (one per byte plane) done in log2(W) rounds of byte interleaves
 * (`i8x16.shuffle`). The JS loops move 4 bytes per operation and run at ~1.1–2.4 GB/s here; this
 * moves 16, and is what bounds an array get once its LZ4 blocks are decoded (docs/PERFORMANCE.md).
 *
 * A module reads only its own linear memory, so the planes to unshuffle live there: the block
 * decoder decompresses (or copies) a block's shuffled bytes into `planes(size)`, then `unshuffle`
 * turns them into elements one cache-sized chunk at a time and copies each chunk out into the
 * caller's typed array while it is still in cache. The result stays an ordinary `ArrayBuffer`.
 *
 * The module is a few hundred bytes built below from its instructions (no toolchain, nothing
 * generated to keep in step). Where WebAssembly SIMD is missing (`WebAssembly.validate` says
 * no), `available` is false and callers use the JS loops.
 *
 * ```
 * unshuffleW(src, stride, dst, count)   W ∈ {2, 4, 8}; count a multiple of 16
 *   for i in 0, 16 … count:  plane p's 16 bytes at src + p·stride + i  →  16 elements at dst + W·i
 * ```
 *
 * @since 0.1.0
 */

// --- a minimal WebAssembly encoder -------------------------------------------------------------

const uleb = (n: number): Array<number> => {
  const out: Array<number> = []
  do {
    let byte = n & 0x7f
    n >>>= 7
    if (n !== 0) byte |= 0x80
    out.push(byte)
  } while (n !== 0)
  return out
}

const sleb = (n: number): Array<number> => {
  const out: Array<number> = []
  for (;;) {
    const byte = n & 0x7f
    n >>= 7
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte)
      return out
    }
    out.push(byte | 0x80)
  }
}

const section = (id: number, body: Array<number>) => [id, ...uleb(body.length), ...body]
const vector = (items: Array<Array<number>>) => [...uleb(items.length), ...items.flat()]
const name = (text: string) => [...uleb(text.length), ...[...text].map((c) => c.charCodeAt(0))]

const I32 = 0x7f
const V128 = 0x7b
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (local: number) => [0x20, ...uleb(local)],
  set: (local: number) => [0x21, ...uleb(local)],
  const: (n: number) => [0x41, ...sleb(n)],
  eqz: [0x45],
  ltU: [0x49],
  add: [0x6a],
  mul: [0x6c],
  load: (offset: number) => [0xfd, 0x00, 0x00, ...uleb(offset)],
  store: (offset: number) => [0xfd, 0x0b, 0x00, ...uleb(offset)],
  shuffle: (lanes: ReadonlyArray<number>) => [0xfd, 0x0d, ...lanes],
  if: [0x04, 0x40],
  else: [0x05],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  return: [0x0f],
  eq: [0x46],
  gtU: [0x4b],
  geU: [0x4f],
  sub: [0x6b],
  and: [0x71],
  or: [0x72],
  shrU: [0x76],
  load8: [0x2d, 0x00, 0x00],
  load16: [0x2f, 0x00, 0x00],
  store8: [0x3a, 0x00, 0x00],
  load64: [0x29, 0x00, 0x00],
  store64: [0x37, 0x00, 0x00],
  copy: [0xfc, 0x0a, 0x00, 0x00],
  fill: [0xfc, 0x0b, 0x00]
}

// Interleave the bytes of two vectors: low halves, then high halves.
const LOW = Array.from({ length: 16 }, (_, i) => (i & 1) * 16 + (i >> 1))
const HIGH = LOW.map((lane) => lane + 8)

/** The body of unshuffleW: params src 0, stride 1, dst 2, count 3; i 4; vectors from 5. */
const unshuffleBody = (width: number): Array<number> => {
  const rounds = Math.log2(width)
  const a = (k: number) => 5 + k
  const b = (k: number) => 5 + width + k
  const code: Array<number> = [...op.block, ...op.get(3), ...op.eqz, ...op.brIf(0), ...op.loop]
  for (let p = 0; p < width; p++) {
    code.push(...op.get(0), ...op.get(4), ...op.add, ...op.get(1), ...op.const(p), ...op.mul, ...op.add)
    code.push(...op.load(0), ...op.set(a(p)))
  }
  // Each round interleaves vector j with vector j + W/2: after log2(W) rounds vector j holds
  // elements 16/W·j … as whole elements (the index bits rotate by log2(W)).
  let from = a
  let to = b
  for (let round = 0; round < rounds; round++) {
    for (let j = 0; j < width / 2; j++) {
      for (const [k, lanes] of [[2 * j, LOW], [2 * j + 1, HIGH]] as const) {
        code.push(...op.get(from(j)), ...op.get(from(j + width / 2)), ...op.shuffle(lanes), ...op.set(to(k)))
      }
    }
    ;[from, to] = [to, from]
  }
  for (let j = 0; j < width; j++) code.push(...op.get(2), ...op.get(from(j)), ...op.store(16 * j))
  code.push(...op.get(2), ...op.const(16 * width), ...op.add, ...op.set(2))
  code.push(...op.get(4), ...op.const(16), ...op.add, ...op.set(4))
  code.push(...op.get(4), ...op.get(3), ...op.ltU, ...op.brIf(0), ...op.end, ...op.end, ...op.end)
  const locals = vector([[1, I32], [2 * width, V128]])
  const body = [...locals, ...code]
  return [...uleb(body.length), ...body]
}

/**
 * The body of lz4(src, srcEnd, dst, dstEnd) → the end of what was written, or -1 on corrupt
 * input: one LZ4 block, every length and offset checked against both ends before anything is
 * copied. Short copies move 16 (or 8) bytes at a time, which may write up to 15 bytes past a
 * match or literal run — only while that stays below `dstEnd`, where later sequences (or the
 * final length check) cover them.
 */
const lz4Body = (): Array<number> => {
  const [S, SRC_END, D, DST_END, TOKEN, LIT, BYTE, DIST, LEN, FROM, STOP, START] = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11
  ]
  const g = op.get
  const inc = (local: number, n: number | Array<number>) => [
    ...g(local),
    ...(typeof n === "number" ? op.const(n) : n),
    ...op.add,
    ...op.set(local)
  ]
  /** Fails (branches to the outer block at `depth`) when `local` > the room between `from` and `end`. */
  const overRoom = (local: number, end: number, from: number, depth: number) => [
    ...g(local),
    ...g(end),
    ...g(from),
    ...op.sub,
    ...op.gtU,
    ...op.brIf(depth)
  ]
  /** A length past 15: bytes added while they are 255, never past the room for it (`depth`: the
   * failure block's, where this is placed). */
  const longLength = (local: number, end: number, from: number, depth: number) => [
    ...op.loop,
    ...g(S),
    ...g(SRC_END),
    ...op.geU,
    ...op.brIf(depth + 1),
    ...g(S),
    ...op.load8,
    ...op.set(BYTE),
    ...inc(S, 1),
    ...inc(local, g(BYTE)),
    ...overRoom(local, end, from, depth + 1),
    ...g(BYTE),
    ...op.const(255),
    ...op.eq,
    ...op.brIf(0),
    ...op.end
  ]
  /** A 16-byte (or 8-byte) step loop copying from FROM to D until STOP. */
  const wide = (load: Array<number>, store: Array<number>, step: number) => [
    ...op.loop,
    ...g(D),
    ...g(FROM),
    ...load,
    ...store,
    ...inc(D, step),
    ...inc(FROM, step),
    ...g(D),
    ...g(STOP),
    ...op.ltU,
    ...op.brIf(0),
    ...op.end,
    ...g(STOP),
    ...op.set(D)
  ]
  const bytewise = [
    ...op.loop,
    ...g(D),
    ...g(FROM),
    ...op.load8,
    ...op.store8,
    ...inc(D, 1),
    ...inc(FROM, 1),
    ...g(D),
    ...g(STOP),
    ...op.ltU,
    ...op.brIf(0),
    ...op.end
  ]
  /** Whether `n` bytes of room are left past STOP before the end of the output. */
  const roomPastStop = (n: number) => [...g(DST_END), ...g(STOP), ...op.sub, ...op.const(n), ...op.geU]
  // Depths: 0 = the sequence loop, 1 = the failure block.
  const code = [
    ...g(D),
    ...op.set(START),
    ...op.block,
    ...op.loop,
    // token, literal length
    ...g(S),
    ...g(SRC_END),
    ...op.geU,
    ...op.brIf(1),
    ...g(S),
    ...op.load8,
    ...op.set(TOKEN),
    ...inc(S, 1),
    ...g(TOKEN),
    ...op.const(4),
    ...op.shrU,
    ...op.set(LIT),
    ...g(LIT),
    ...op.const(15),
    ...op.eq,
    ...op.if,
    ...longLength(LIT, SRC_END, S, 2),
    ...op.end,
    ...overRoom(LIT, SRC_END, S, 1),
    ...overRoom(LIT, DST_END, D, 1),
    // literals
    ...g(LIT),
    ...op.const(16),
    ...op.gtU,
    ...g(SRC_END),
    ...g(S),
    ...op.sub,
    ...op.const(16),
    ...op.ltU,
    ...op.or,
    ...g(DST_END),
    ...g(D),
    ...op.sub,
    ...op.const(16),
    ...op.ltU,
    ...op.or,
    ...op.if,
    ...g(D),
    ...g(S),
    ...g(LIT),
    ...op.copy,
    ...op.else,
    ...g(D),
    ...g(S),
    ...op.load(0),
    ...op.store(0),
    ...op.end,
    ...inc(S, g(LIT)),
    ...inc(D, g(LIT)),
    // the last sequence ends after its literals
    ...g(S),
    ...g(SRC_END),
    ...op.eq,
    ...op.if,
    ...g(D),
    ...op.return,
    ...op.end,
    // match offset and length
    ...g(SRC_END),
    ...g(S),
    ...op.sub,
    ...op.const(2),
    ...op.ltU,
    ...op.brIf(1),
    ...g(S),
    ...op.load16,
    ...op.set(DIST),
    ...inc(S, 2),
    ...g(DIST),
    ...op.eqz,
    ...op.brIf(1),
    ...overRoom(DIST, D, START, 1),
    ...g(TOKEN),
    ...op.const(15),
    ...op.and,
    ...op.set(LEN),
    ...g(LEN),
    ...op.const(15),
    ...op.eq,
    ...op.if,
    ...longLength(LEN, DST_END, D, 2),
    ...op.end,
    ...inc(LEN, 4),
    ...overRoom(LEN, DST_END, D, 1),
    ...g(D),
    ...g(DIST),
    ...op.sub,
    ...op.set(FROM),
    ...g(D),
    ...g(LEN),
    ...op.add,
    ...op.set(STOP),
    // the copy: 16 bytes at a time when the source is that far behind (each step reads only
    // bytes already written), 8 when 8, a fill for a repeated byte, else byte by byte
    ...g(DIST),
    ...op.const(16),
    ...op.geU,
    ...roomPastStop(16),
    ...op.and,
    ...op.if,
    ...wide(op.load(0), op.store(0), 16),
    ...op.else,
    ...g(DIST),
    ...op.const(8),
    ...op.geU,
    ...roomPastStop(8),
    ...op.and,
    ...op.if,
    ...wide(op.load64, op.store64, 8),
    ...op.else,
    ...g(DIST),
    ...op.const(1),
    ...op.eq,
    ...op.if,
    ...g(D),
    ...g(FROM),
    ...op.load8,
    ...g(LEN),
    ...op.fill,
    ...g(STOP),
    ...op.set(D),
    ...op.else,
    ...bytewise,
    ...op.end,
    ...op.end,
    ...op.end,
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...op.const(-1),
    ...op.end
  ]
  const body = [...vector([[8, I32]]), ...code]
  return [...uleb(body.length), ...body]
}

const WIDTHS = [2, 4, 8] as const
const FOUR_I32 = vector([[I32], [I32], [I32], [I32]])
const MAGIC_AND_VERSION = [...name("\0asm").slice(1), 1, 0, 0, 0]

const moduleBytes = (): Uint8Array =>
  new Uint8Array([
    ...MAGIC_AND_VERSION,
    ...section(1, vector([[0x60, ...FOUR_I32, 0], [0x60, ...FOUR_I32, ...vector([[I32]])]])),
    ...section(3, vector([...WIDTHS.map(() => [0]), [1]])),
    ...section(5, vector([[0x00, 1]])),
    ...section(
      7,
      vector([
        [...name("memory"), 0x02, 0],
        ...WIDTHS.map((w, i) => [...name(`unshuffle${w}`), 0x00, i]),
        [...name("lz4"), 0x00, WIDTHS.length]
      ])
    ),
    ...section(10, vector([...WIDTHS.map(unshuffleBody), lz4Body()]))
  ])

// --- the module and its memory -------------------------------------------------------------------

type Kernel = (src: number, stride: number, dst: number, count: number) => void

// The few WebAssembly globals used, typed here: the compiler's library for Node leaves them out.
interface Memory {
  readonly buffer: ArrayBuffer
  grow(pages: number): number
}
interface WebAssemblyApi {
  validate(bytes: Uint8Array): boolean
  Module: new(bytes: Uint8Array) => object
  Instance: new(module: object) => { readonly exports: Record<string, unknown> }
}
const WebAssembly = (globalThis as { WebAssembly?: WebAssemblyApi }).WebAssembly

interface Instance {
  readonly memory: Memory
  readonly kernels: Record<number, Kernel>
  readonly lz4: (src: number, srcEnd: number, dst: number, dstEnd: number) => number
}

const instantiate = (): Instance | null => {
  try {
    const bytes = moduleBytes()
    if (WebAssembly === undefined || !WebAssembly.validate(bytes)) return null
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes))
    const exports = instance.exports
    const kernels: Record<number, Kernel> = {}
    for (const width of WIDTHS) kernels[width] = exports[`unshuffle${width}`] as Kernel
    return { memory: exports.memory as Memory, kernels, lz4: exports.lz4 as Instance["lz4"] }
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
 * Whether the block decoder uses the module: `available` unless turned off with `enable(false)`
 * (benchmarks compare both paths in one process).
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
 * Bytes of elements unshuffled per chunk before being copied out: small enough to stay in the L2
 * cache between the unshuffle writing them and the copy reading them.
 *
 * @since 0.1.0
 * @category constants
 */
export const CHUNK = 128 << 10

// Memory layout: [0, CHUNK) the chunk of elements; [CHUNK, …) the planes.
const PLANES = CHUNK

const ensure = (bytes: number): Memory => {
  const memory = wasm!.memory
  const missing = bytes - memory.buffer.byteLength
  // Grown pages are touched at once, so a later block does not pay their page faults.
  if (missing > 0) {
    const before = memory.buffer.byteLength
    memory.grow(Math.ceil(missing / 65536))
    new Uint8Array(memory.buffer, before).fill(0)
  }
  return memory
}

/**
 * A view of `size` bytes of the module's memory where a block's shuffled bytes go before
 * `unshuffle`. Valid until the next call of `planes` (a larger size may move the memory).
 *
 * @since 0.1.0
 * @category simd
 */
export const planes = (size: number): Uint8Array => new Uint8Array(ensure(PLANES + size).buffer, PLANES, size)

/**
 * Decompresses one LZ4 block (`src`, no size prefix) into `planes(size)`, which it must fill
 * exactly; throws `RangeError` on corrupt input, like `lz4.ts`. The block is copied into the
 * module's memory first, past the planes.
 *
 * @since 0.1.0
 * @category simd
 */
export const decompressToPlanes = (src: Uint8Array, size: number): void => decompressToPlane(src, size, 0, size)

/**
 * Decompresses one LZ4 block (`src`, no size prefix) into bytes `at … at + length` of
 * `planes(size)`, which it must fill exactly; the bytes around them are left as they are (a block
 * stored plane by plane decodes each plane into its place). Matches cannot reach before `at`, nor
 * short copies past `at + length`. Throws `RangeError` on corrupt input.
 *
 * @since 0.1.0
 * @category simd
 */
export const decompressToPlane = (src: Uint8Array, size: number, at: number, length: number): void => {
  const input = PLANES + size
  const memory = ensure(input + src.byteLength)
  new Uint8Array(memory.buffer, input, src.byteLength).set(src)
  const start = PLANES + at
  const end = wasm!.lz4(input, input + src.byteLength, start, start + length)
  if (end !== start + length) {
    throw new RangeError(
      end < 0 ? "corrupt LZ4 block" : `corrupt LZ4 block: decompressed to ${end - start} bytes, expected ${length}`
    )
  }
}

/**
 * Unshuffles the `target.byteLength` bytes last placed in `planes` (elements of `width` ∈ {2, 4,
 * 8} bytes) into `target`. Bytes past the last whole element are copied as they are, and so are
 * the last elements that do not fill a vector, as `shuffle.ts` does.
 *
 * @since 0.1.0
 * @category simd
 */
export const unshuffle = (target: Uint8Array, width: 2 | 4 | 8): void => {
  const total = target.byteLength
  const memory = ensure(PLANES + total)
  const kernel = wasm!.kernels[width]!
  const n = Math.floor(total / width)
  const wide = n & ~15
  const perChunk = CHUNK / width
  const chunk = new Uint8Array(memory.buffer, 0, CHUNK)
  for (let first = 0; first < wide; first += perChunk) {
    const count = Math.min(perChunk, wide - first)
    kernel(PLANES + first, n, 0, count)
    target.set(count === perChunk ? chunk : chunk.subarray(0, count * width), first * width)
  }
  const src = new Uint8Array(memory.buffer, PLANES, total)
  for (let i = wide; i < n; i++) {
    for (let b = 0; b < width; b++) target[i * width + b] = src[b * n + i]!
  }
  for (let i = n * width; i < total; i++) target[i] = src[i]!
}

/** @internal The module builder, the header and the typed global, for simdShuffle.ts and sequence.ts. */
export const builder = { uleb, section, vector, name, op, I32, V128, MAGIC_AND_VERSION, WebAssembly }
