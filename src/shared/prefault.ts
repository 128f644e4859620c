/**
 * Fresh memory faulted in by another core. A large decoded array is new memory the caller keeps
 * (an ordinary `ArrayBuffer`, transferable, never shared), and the first write to each 4 KiB page
 * of it costs a page fault: on the benchmark VM a fresh 64 MiB buffer fills at ~1.4–2.8 GB/s
 * against 10–20 GB/s for touched memory, so faulting is as much work as a raw file read.
 *
 * `help` has libuv's threadpool read `/dev/zero` into the upper part of the buffer — the kernel
 * faults those pages in on a threadpool thread, on the other core — while the decoder fills the
 * buffer from the bottom. The decoder asks `ready(end)` before it writes below `end`: a promise
 * when a read that reaches below `end` is still running (it writes zeros, so it must finish
 * first), `undefined` when nothing is in its way. Zeros are what a fresh buffer holds anyway, so
 * a read that fails or comes back short changes nothing but the speed.
 *
 * Where `/dev/zero` cannot be opened (Windows), `help` does nothing and every `ready` is
 * `undefined`.
 *
 * @since 0.1.0
 */
import * as NodeFs from "node:fs"

/**
 * Bytes per threadpool read: small enough that the decoder rarely waits for one, large enough
 * that the reads cost little to issue.
 *
 * @since 0.1.0
 * @category constants
 */
export const PIECE = 4 << 20

/**
 * Buffers smaller than this are faulted in by whoever writes them.
 *
 * @since 0.1.0
 * @category constants
 */
export const MIN_SIZE = 8 << 20

// Opened on first use and kept: one descriptor for the process, like libuv's own.
let zero: number | null | undefined
const zeroFd = (): number | null => {
  if (zero === undefined) {
    try {
      zero = NodeFs.openSync("/dev/zero", "r")
    } catch {
      zero = null
    }
  }
  return zero
}

const NOTHING = () => undefined

/**
 * A buffer being faulted in by `fill`: `ready(end)` as `help`'s (a promise while a read that
 * reaches below `end` still runs), and `done`, which settles once every read has ended — true when
 * each one filled its share.
 *
 * @since 0.1.0
 * @category models
 */
export interface Filling {
  readonly ready: (end: number) => Promise<void> | undefined
  readonly done: Promise<boolean>
}

/**
 * Starts faulting in all of `bytes` with `streams` reads of `/dev/zero` issued at once, each over
 * its own share from the bottom up (a read that comes back short is continued from its callback).
 * Issued all at once from the process's one descriptor, the fill runs to its end on the threadpool
 * without a turn of this thread's event loop between pieces: a chain of pieces issued one after
 * the other stalls while this thread decodes or compresses (measured: a 64 MiB spare finished
 * 300–700 ms after it was asked for). A share that a read could not fill is zeroed here, once
 * `done` settles, so the buffer ends all zeros either way. `undefined`, and nothing started, where
 * `/dev/zero` cannot be opened.
 *
 * @since 0.1.0
 * @category prefault
 */
export const fill = (bytes: Uint8Array, streams: number): Filling | undefined => {
  const fd = zeroFd()
  if (fd === null) return undefined
  const size = bytes.byteLength
  const share = Math.max(4096, Math.ceil(size / streams / 4096) * 4096)
  const shares: Array<{ readonly at: number; finished: boolean; readonly done: Promise<boolean> }> = []
  for (let at = 0; at < size; at += share) {
    const to = Math.min(size, at + share)
    const piece = { at, finished: false, done: Promise.resolve(true) }
    piece.done = new Promise<boolean>((resolve) => {
      const step = (from: number): void => {
        NodeFs.read(fd, bytes, from, to - from, null, (error, bytesRead) => {
          if (error === null && bytesRead > 0 && from + bytesRead < to) return step(from + bytesRead)
          const whole = error === null && from + bytesRead === to
          if (!whole) bytes.fill(0, from, to)
          piece.finished = true
          resolve(whole)
        })
      }
      step(at)
    })
    shares.push(piece)
  }
  return {
    ready: (end) => {
      let pending: Array<Promise<boolean>> | undefined
      for (const piece of shares) {
        if (piece.at < end && !piece.finished) (pending ??= []).push(piece.done)
      }
      return pending === undefined ? undefined : Promise.all(pending).then(NOTHING)
    },
    done: Promise.all(shares.map((piece) => piece.done)).then((all) => all.every((ok) => ok))
  }
}

/**
 * Starts faulting in `bytes` from `from` to its end, top first; returns `ready`. `from` is rounded
 * down to a page. Nothing is started for buffers under `MIN_SIZE`.
 *
 * @since 0.1.0
 * @category prefault
 */
export const help = (bytes: Uint8Array, from: number): (end: number) => Promise<void> | undefined => {
  const size = bytes.byteLength
  const start = Math.max(0, from - (from % 4096))
  const fd = size < MIN_SIZE || start >= size ? null : zeroFd()
  if (fd === null) return NOTHING
  // Pieces from the top down: the last ones issued are the ones the decoder reaches first.
  const pieces: Array<{ readonly at: number; finished: boolean; readonly done: Promise<void> }> = []
  for (let end = size; end > start; end -= PIECE) {
    const at = Math.max(start, end - PIECE)
    const piece = { at, finished: false, done: Promise.resolve() }
    piece.done = new Promise<void>((resolve) =>
      NodeFs.read(fd, bytes, at, end - at, null, () => {
        piece.finished = true
        resolve()
      })
    )
    pieces.push(piece)
  }
  return (end) => {
    let pending: Array<Promise<void>> | undefined
    for (const piece of pieces) {
      if (piece.at < end && !piece.finished) (pending ??= []).push(piece.done)
    }
    return pending === undefined ? undefined : Promise.all(pending).then(NOTHING)
  }
}
