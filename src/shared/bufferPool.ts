/**
 * Output buffers of large encoded values, kept for the next put. Writing into memory a process has
 * never touched costs a page fault per 4 KiB, and on this kind of VM that is the largest cost of
 * storing an array: a fresh 64 MiB buffer filled at ~100–260 MB/s against ~14 GB/s for memory
 * already touched (the seed's measurements). Buffers above 32 MiB are never recycled by malloc, so without a
 * pool every large put pays it again.
 *
 * One idle buffer is kept — the largest given back — and dropped after `IDLE_MS` without use, so a
 * process that stored one big array does not hold its memory for ever. Only buffers this module
 * handed out are taken back (a caller cannot slip in memory someone else still uses), and only
 * by whoever knows the bytes are dead: `Cache.put` once the blob is written and checksummed.
 * Bytes never given back are simply garbage collected.
 *
 * @since 0.1.0
 */
import * as Prefault from "./prefault.js"

/** Smaller buffers come from Node's allocator, which recycles them well enough. */
const MIN_POOLED = 1 << 20
/** Larger ones are not kept: one such put is rare, and holding its memory is not worth it. */
const MAX_POOLED = 512 << 20
/**
 * How long a pooled buffer or a result spare is kept without use before it is dropped.
 *
 * @since 0.1.0
 * @category constants
 */
export const IDLE_MS = 10_000

const ours = new WeakSet<ArrayBuffer>()
let idle: ArrayBuffer | undefined
let timer: ReturnType<typeof setTimeout> | undefined

const drop = () => {
  idle = undefined
  timer = undefined
}

/**
 * A `Buffer` of `size` bytes, uninitialised: the idle one when it is large enough, else new.
 *
 * @since 0.1.0
 * @category pool
 */
export const take = (size: number): Buffer => {
  if (size < MIN_POOLED || size > MAX_POOLED) return Buffer.allocUnsafe(size)
  if (idle !== undefined && idle.byteLength >= size) {
    const buffer = idle
    idle = undefined
    return Buffer.from(buffer, 0, size)
  }
  const fresh = Buffer.allocUnsafeSlow(size)
  ours.add(fresh.buffer as ArrayBuffer)
  return fresh
}

/**
 * Gives back the memory under `bytes` (any view of a buffer `take` returned); anything else is
 * ignored. The caller must not touch `bytes` afterwards.
 *
 * @since 0.1.0
 * @category pool
 */
export const give = (bytes: Uint8Array): void => {
  const buffer = bytes.buffer as ArrayBuffer
  if (!ours.has(buffer)) return
  if (idle === undefined || buffer.byteLength > idle.byteLength) idle = buffer
  if (timer !== undefined) clearTimeout(timer)
  timer = setTimeout(drop, IDLE_MS)
  timer.unref()
}

/**
 * Memory for the *results* of large decodes (an array read back), faulted in ahead of time. A
 * result belongs to the caller, so it is never recycled; but the page faults of a fresh one can be
 * paid between reads instead of during one — on the benchmark VM a fresh 64 MiB buffer costs
 * 25–75 ms to fault in, as much as decompressing into it. Once a read has taken a result of some
 * size (in the event loop's next turn), a new buffer of that size is prepared in the background: `/dev/zero` is read into it on
 * libuv's threadpool, so the kernel faults its pages in off the main thread, and the next read of
 * that size decodes into memory already touched. Each is a plain `ArrayBuffer` (transferable,
 * never shared, never handed out twice), zeros until the decoder overwrites every byte.
 *
 * At most `MAX_SPARE_BYTES` are held, in buffers of `MIN_SPARE`…`MAX_SPARE` bytes, all dropped
 * after `IDLE_MS` without a read. A prefault in progress keeps the process alive until it ends
 * (tens of milliseconds). Where `/dev/zero` cannot be opened (Windows), results are fresh buffers.
 */
const MIN_SPARE = 4 << 20
const MAX_SPARE = 128 << 20
const MAX_SPARE_BYTES = 128 << 20
/**
 * Bytes each threadpool read faults in (`Prefault.fill` issues them all at once, side by side), at
 * most `MAX_FILL_STREAMS` reads: a 64 MiB spare is four reads of 16 MiB, a 20 MB one two. A get that
 * comes while its spare is still filling waits only for the reads below each block it writes, not
 * for the whole spare (with one read of 64 MiB, an Int32Array get that decodes in 5 ms waited
 * 30–90 ms for it); and at most four reads leave the put's compression and the blob reads the
 * threadpool's other turns.
 */
const FILL_PIECE = 16 << 20
const MAX_FILL_STREAMS = 4

/** Ready spares by size, oldest first (a Map iterates in insertion order). */
const spares = new Map<number, ArrayBuffer>()
/** Spares being faulted in, by size. */
const filling = new Map<number, { readonly buffer: ArrayBuffer; readonly fill: Prefault.Filling }>()
const faulted = new WeakSet<ArrayBuffer>()
let zeroAvailable = process.platform !== "win32"
let spareTimer: ReturnType<typeof setTimeout> | undefined

const held = (): number => {
  let bytes = 0
  for (const size of spares.keys()) bytes += size
  for (const size of filling.keys()) bytes += size
  return bytes
}

const dropSpares = () => {
  spares.clear()
  spareTimer = undefined
}

const keepSpare = (size: number, buffer: ArrayBuffer) => {
  faulted.add(buffer)
  spares.set(size, buffer)
  if (spareTimer !== undefined) clearTimeout(spareTimer)
  spareTimer = setTimeout(dropSpares, IDLE_MS)
  spareTimer.unref()
}

const prepare = (size: number) => {
  if (!zeroAvailable || filling.has(size) || spares.has(size)) return
  // Room for it: the oldest spares go first; when what is being prepared fills the room, nothing starts.
  while (spares.size > 0 && held() + size > MAX_SPARE_BYTES) spares.delete(spares.keys().next().value!)
  if (held() + size > MAX_SPARE_BYTES) return
  // Uninitialised (malloc, not calloc): the /dev/zero reads zero every byte on the threadpool,
  // where calloc would first memset recycled memory on this thread (1–2 ms for 20 MB); a share a
  // read could not fill is zeroed by `Prefault.fill`.
  const buffer = Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer
  const fill = Prefault.fill(new Uint8Array(buffer), Math.min(MAX_FILL_STREAMS, Math.ceil(size / FILL_PIECE)))
  if (fill === undefined) {
    zeroAvailable = false
    return
  }
  const entry = { buffer, fill }
  filling.set(size, entry)
  void fill.done.then((ok) => {
    if (filling.get(size) !== entry) return
    filling.delete(size)
    if (ok) keepSpare(size, buffer)
  })
}

/**
 * A new `ArrayBuffer` of exactly `size` bytes for a decoded value, all zeros: one faulted in ahead
 * of time when a read of this size ran before, else fresh. Either way, for sizes worth it, the
 * next one of this size is prepared in the background.
 *
 * @since 0.1.0
 * @category pool
 */
export const result = (size: number): ArrayBuffer => {
  if (size < MIN_SPARE || size > MAX_SPARE) return new ArrayBuffer(size)
  const spare = spares.get(size)
  spares.delete(size)
  // After this turn, not now: the read that took this result decodes into it first. Faulting the
  // next spare in beside the decode (and the full collection V8 starts for its new external memory)
  // took the second core from the get: the float64 get waited 12–14 ms for a core, 2 ms after.
  setImmediate(prepare, size)
  return spare ?? new ArrayBuffer(size)
}

/**
 * `result` for a value read straight into it from a file, in two steps. `readTarget` hands out the
 * spare of this size: ready, or still being faulted in (then `ready` settles once the fill has
 * ended, and the read must wait for it: the fill writes zeros); else fresh memory, which the read
 * faults in on the threadpool. `prepareNext`, called once the read is done, prepares the next
 * spare. Faulting it in while the read still ran put four `/dev/zero` reads ahead of the read's own
 * on the threadpool, and its new memory started a full collection beside it: the get took
 * 50–57 ms instead of 15–18.
 *
 * @since 0.1.0
 * @category pool
 */
export const readTarget = (
  size: number
): { readonly buffer: ArrayBuffer; readonly ready: Promise<unknown> | undefined } => {
  const spare = spares.get(size)
  if (spare !== undefined) {
    spares.delete(size)
    return { buffer: spare, ready: undefined }
  }
  const inProgress = filling.get(size)
  if (inProgress === undefined) return { buffer: new ArrayBuffer(size), ready: undefined }
  filling.delete(size)
  return { buffer: inProgress.buffer, ready: inProgress.fill.done }
}

/**
 * See `readTarget`.
 *
 * @since 0.1.0
 * @category pool
 */
export const prepareNext = (size: number): void => {
  if (size >= MIN_SPARE && size <= MAX_SPARE) setImmediate(prepare, size)
}

/**
 * `result` for a decoder that can wait: when the spare of this size is still being faulted in,
 * it is handed out as it is, and `ready(end)` (as `Prefault.help`'s) says when the bytes below
 * `end` may be written — the fill writes zeros, so it must be past them first. `ready` is
 * `undefined` for a spare already faulted in and for fresh memory (`prefaulted` tells which). The
 * next spare of the size is prepared once the one handed out is filled, not beside it.
 *
 * @since 0.1.0
 * @category pool
 */
export const resultWaiting = (
  size: number
): { readonly buffer: ArrayBuffer; readonly ready: ((end: number) => Promise<void> | undefined) | undefined } => {
  const inProgress = size < MIN_SPARE || size > MAX_SPARE || spares.has(size) ? undefined : filling.get(size)
  if (inProgress === undefined) return { buffer: result(size), ready: undefined }
  filling.delete(size)
  void inProgress.fill.done.then(() => prepare(size))
  return { buffer: inProgress.buffer, ready: inProgress.fill.ready }
}

/**
 * Whether `buffer` came from `result` already faulted in (faulting it in again gains nothing).
 *
 * @since 0.1.0
 * @category pool
 */
export const prefaulted = (buffer: ArrayBuffer): boolean => faulted.has(buffer)

/**
 * Result sizes with a buffer ready, smallest first (for tests and benchmarks).
 *
 * @since 0.1.0
 * @category pool
 */
export const sparesReady = (): ReadonlyArray<number> => [...spares.keys()].sort((a, b) => a - b)

/**
 * Result sizes with a buffer being faulted in, smallest first (for tests and benchmarks).
 *
 * @since 0.1.0
 * @category pool
 */
export const sparesFilling = (): ReadonlyArray<number> => [...filling.keys()].sort((a, b) => a - b)
