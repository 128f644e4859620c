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

/** Smaller buffers come from Node's allocator, which recycles them well enough. */
const MIN_POOLED = 1 << 20
/** Larger ones are not kept: one such put is rare, and holding its memory is not worth it. */
const MAX_POOLED = 512 << 20
const IDLE_MS = 10_000

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
