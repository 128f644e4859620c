/**
 * A worker thread that decodes LZ4 blocks beside the main thread, so a large array get uses both
 * cores. Decoding a 64 MiB float64 array (four 16 MiB shuffled LZ4 blocks) is ~37 ms of one
 * thread — most of the get (docs/PERFORMANCE.md, "The array get, step by step").
 *
 * The worker runs `simd.ts`'s module on a shared WebAssembly memory: the main thread copies the
 * compressed bytes of the blocks it hands over into that memory, the worker decompresses and
 * unshuffles each of them into its place there, and the main thread, having decoded its own
 * blocks meanwhile, copies the worker's out into the result — which stays an ordinary
 * `ArrayBuffer` (a worker cannot write into one, hence the copy). One job at a time: a decode
 * that finds the worker busy, starting, or gone decodes on its own thread, as before.
 *
 * The worker starts on first use (that get decodes alone), is `unref`'d while idle so it never
 * keeps the process alive, and is stopped with its memory dropped after `IDLE_MS` without use.
 * Where workers, shared memory or SIMD are missing, `acquire` says `undefined` and callers decode
 * in-thread. Like `src/key/hashWorkers.ts`, the worker source is plain CommonJS evaluated in place.
 *
 * @since 0.1.0
 */
import * as os from "node:os"
import { Worker } from "node:worker_threads"
import * as Simd from "./simd.js"

/** Shared memory's ceiling, 1 GiB: reserved address space, not memory; larger jobs decode in-thread. */
const MAX_PAGES = 16384
const PAGE = 65536
const IDLE_MS = 10_000

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads")
let memory
let exports
const corrupt = (end, from, size) =>
  end < 0 ? "corrupt LZ4 block" : "corrupt LZ4 block: decompressed to " + (end - from) + " bytes, expected " + size
parentPort.on("message", (message) => {
  if (message.module !== undefined) {
    memory = message.memory
    exports = new WebAssembly.Instance(message.module, { env: { memory } }).exports
  }
  if (message.touch !== undefined) {
    // Grown memory faulted in here, between decodes, rather than by the next decode on both threads.
    const [from, to] = message.touch
    new Uint8Array(memory.buffer, from, to - from).fill(0)
    parentPort.postMessage({ ready: true })
    return
  }
  const { id, planes, blocks } = message
  // Blocks are claimed one at a time, last first, so the caller (going first to last) can take
  // those the worker has not reached: 0 free, 1 decoding here, 2 done, 3 damaged, 4 the caller's.
  const states = new Int32Array(memory.buffer, 0, blocks.length)
  let damaged
  for (let k = blocks.length - 1; k >= 0; k--) {
    if (Atomics.compareExchange(states, k, 0, 1) !== 0) continue
    try {
      decode(blocks[k], planes)
      Atomics.store(states, k, 2)
    } catch (error) {
      damaged = String(error && error.message || error)
      Atomics.store(states, k, 3)
    }
    Atomics.notify(states, k)
    if (damaged !== undefined) break
  }
  parentPort.postMessage(damaged === undefined ? { id } : { id, corrupt: damaged })
})
const decode = ({ src, srcEnd, dst, size, width }, planes) => {
  if (width === 1) {
    const end = exports.lz4(src, srcEnd, dst, dst + size)
    if (end !== dst + size) throw new RangeError(corrupt(end, dst, size))
    return
  }
  const end = exports.lz4(src, srcEnd, planes, planes + size)
  if (end !== planes + size) throw new RangeError(corrupt(end, planes, size))
  const n = Math.floor(size / width)
  const wide = n & ~15
  exports["unshuffle" + width](planes, n, dst, wide)
  // The elements past the last whole vector, and bytes past the last element, as simd.ts does.
  const bytes = new Uint8Array(memory.buffer)
  for (let i = wide; i < n; i++) {
    for (let b = 0; b < width; b++) bytes[dst + i * width + b] = bytes[planes + b * n + i]
  }
  for (let i = n * width; i < size; i++) bytes[dst + i] = bytes[planes + i]
}
`

/**
 * One block for the worker: LZ4 (no size prefix) at `[src, srcEnd)` of the shared memory, to be
 * decoded — and unshuffled when `width` > 1 — into `[dst, dst + size)`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Job {
  readonly src: number
  readonly srcEnd: number
  readonly dst: number
  readonly size: number
  readonly width: 1 | 2 | 4 | 8
}

/**
 * What the worker found: nothing wrong, or the reason a block does not decode.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = { readonly corrupt?: string }

/**
 * Where a block handed to the worker stands (`Lease.claim`, `Lease.wait`).
 *
 * @since 0.1.0
 * @category models
 */
export const State = { free: 0, working: 1, done: 2, damaged: 3, caller: 4 } as const

/**
 * Bytes at the start of the shared memory that hold the blocks' states; a caller's offsets start
 * here. At most `CONTROL / 4` blocks per job.
 *
 * @since 0.1.0
 * @category constants
 */
export const CONTROL = 4096

/**
 * The worker and its memory, held by one decode until `release`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Lease {
  /** The shared memory, at least `CONTROL` + the size asked for. */
  readonly memory: Uint8Array
  /**
   * Runs the blocks, `planes` being where the worker may put up to the largest block's bytes
   * before unshuffling them. The worker takes them last first; resolves once it has none left.
   * Rejects when the worker died (blocks it had not finished stay `free` or `working`).
   */
  readonly run: (planes: number, blocks: ReadonlyArray<Job>) => Promise<Outcome>
  /** Takes block `k` for the caller when the worker has not started it (`State.caller`), else its state. */
  readonly claim: (k: number) => number
  /** Block `k`'s state once it is no longer `working`, or after `ms` (then still `working`). */
  readonly wait: (k: number, ms: number) => Promise<number>
  /** Gives the worker back; once `run`'s promise has settled, if it was called. */
  readonly release: () => void
}

interface Pending {
  readonly id: number
  readonly resolve: (outcome: Outcome) => void
  readonly reject: (error: unknown) => void
}

interface Running {
  readonly worker: Worker
  readonly memory: Simd.SharedMemory
  ready: boolean
  busy: boolean
  pending: Pending | undefined
}

let running: Running | undefined
let broken = false
let enabled = true
let nextId = 0
let idleTimer: ReturnType<typeof setTimeout> | undefined
let readyWaiters: Array<(ready: boolean) => void> = []
let jobsRun = 0
let damagedFound = 0
let waited = 0
let lastJob: Promise<unknown> = Promise.resolve()

const cores = (): number => {
  try {
    return os.availableParallelism()
  } catch {
    return 1
  }
}

const stop = (state: Running, error: unknown) => {
  if (running === state) running = undefined
  // One that never became ready cannot run here (no shared memory in workers, say): not again.
  if (!state.ready) broken = true
  const pending = state.pending
  state.pending = undefined
  if (pending !== undefined) pending.reject(error)
  for (const resolve of readyWaiters) resolve(false)
  readyWaiters = []
}

/**
 * Grows the memory to `bytes` and has the worker fault the new pages in; the worker is not ready
 * until it has. False when `bytes` is past the ceiling or the memory cannot grow.
 */
const grow = (state: Running, bytes: number, first: { readonly module: object } | undefined): boolean => {
  const from = state.memory.buffer.byteLength
  const missing = Math.ceil((bytes - from) / PAGE)
  if (missing > 0) {
    if (from / PAGE + missing > MAX_PAGES) return false
    try {
      state.memory.grow(missing)
    } catch {
      return false
    }
  }
  state.ready = false
  const touch = [from, state.memory.buffer.byteLength]
  state.worker.postMessage(first === undefined ? { touch } : { module: first.module, memory: state.memory, touch })
  return true
}

const start = (bytes: number): void => {
  const shared = Simd.sharedModule(MAX_PAGES)
  if (shared === null) {
    broken = true
    return
  }
  let worker: Worker
  try {
    worker = new Worker(WORKER_SOURCE, { eval: true })
  } catch {
    broken = true
    return
  }
  worker.unref()
  const state: Running = { worker, memory: shared.memory, ready: false, busy: false, pending: undefined }
  running = state
  worker.on("message", (message: { ready?: true; id?: number } & Outcome) => {
    if (message.ready === true) {
      state.ready = true
      for (const resolve of readyWaiters) resolve(true)
      readyWaiters = []
      return
    }
    const pending = state.pending
    if (pending === undefined || pending.id !== message.id) return
    state.pending = undefined
    worker.unref()
    if (message.corrupt !== undefined) damagedFound++
    pending.resolve(message.corrupt === undefined ? {} : { corrupt: message.corrupt })
  })
  worker.on("error", (error) => stop(state, error))
  worker.on("exit", (code) => stop(state, new Error(`block worker exited with code ${code}`)))
  if (!grow(state, Math.min(bytes, MAX_PAGES * PAGE), shared)) grow(state, 0, shared)
  scheduleIdle()
}

// Dropped when unused for a while: the worker's memory holds up to three times what it last decoded.
const scheduleIdle = () => {
  if (idleTimer !== undefined) clearTimeout(idleTimer)
  idleTimer = setTimeout(() => {
    idleTimer = undefined
    const state = running
    if (state === undefined || state.busy) return
    running = undefined
    void state.worker.terminate()
  }, IDLE_MS)
  idleTimer.unref()
}

type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
  timeout: number
) => { readonly async: boolean; readonly value: Promise<string> | string }

const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync

const waitWhileWorking = async (states: Int32Array, k: number, ms: number): Promise<number> => {
  const from = performance.now()
  const until = from + ms
  for (;;) {
    const now = Atomics.load(states, k)
    const left = until - performance.now()
    if (now !== State.working || left <= 0) {
      waited += performance.now() - from
      return now
    }
    if (waitAsync !== undefined) {
      const result = waitAsync(states, k, State.working, left)
      if (result.async) await result.value
    } else {
      // No Atomics.waitAsync: look again shortly.
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
  }
}

const usable = (): boolean => enabled && !broken && Simd.active() && cores() >= 2

/**
 * The worker with a shared memory of at least `bytes`, or `undefined` when this decode should run
 * in-thread: workers unavailable or turned off, one core, the worker starting (started now when
 * it was not), busy with another decode, or `bytes` beyond its ceiling.
 *
 * @since 0.1.0
 * @category pool
 */
export const acquire = (bytes: number): Lease | undefined => {
  if (!usable()) return undefined
  if (running === undefined) {
    start(bytes)
    return undefined
  }
  const state = running
  if (!state.ready || state.busy) return undefined
  if (bytes > state.memory.buffer.byteLength) {
    // This decode runs in-thread while the worker faults the grown memory in, for the next one.
    grow(state, bytes, undefined)
    return undefined
  }
  state.busy = true
  scheduleIdle()
  let released = false
  const states = new Int32Array(state.memory.buffer, 0, CONTROL / 4)
  return {
    memory: new Uint8Array(state.memory.buffer),
    run: (planes, blocks) => {
      const job = new Promise<Outcome>((resolve, reject) => {
        if (blocks.length > CONTROL / 4) return reject(new RangeError("too many blocks for one job"))
        for (let k = 0; k < blocks.length; k++) Atomics.store(states, k, State.free)
        if (running !== state) return reject(new Error("block worker stopped"))
        const id = nextId++
        state.pending = { id, resolve, reject }
        jobsRun++
        state.worker.ref()
        state.worker.postMessage({ id, planes, blocks })
      })
      lastJob = job.catch(() => undefined)
      return job
    },
    claim: (k) => {
      const before = Atomics.compareExchange(states, k, State.free, State.caller)
      return before === State.free ? State.caller : before
    },
    wait: (k, ms) => waitWhileWorking(states, k, ms),
    release: () => {
      if (released) return
      released = true
      state.busy = false
      scheduleIdle()
    }
  }
}

/**
 * Starts the worker if it is not running, with memory for decodes of up to `bytes` (as `acquire`
 * counts them) faulted in, and resolves once it can take work: `true`, or `false` when it cannot
 * start. For tests and benchmarks, which want the parallel path from the first get.
 *
 * @since 0.1.0
 * @category pool
 */
export const warm = (bytes = 0): Promise<boolean> => {
  if (!usable()) return Promise.resolve(false)
  if (running === undefined) start(bytes)
  else if (running.ready && !running.busy && bytes > running.memory.buffer.byteLength) grow(running, bytes, undefined)
  if (running === undefined) return Promise.resolve(false)
  if (running.ready) return Promise.resolve(true)
  return new Promise((resolve) => readyWaiters.push(resolve))
}

/**
 * Turns the worker's use on or off (off: every decode in-thread; benchmarks compare both).
 *
 * @since 0.1.0
 * @category pool
 */
export const enable = (on: boolean): void => {
  enabled = on
}

/**
 * How many jobs were handed to the worker in this process (tests check the parallel path ran).
 *
 * @since 0.1.0
 * @category pool
 */
export const jobs = (): number => jobsRun

/**
 * How many jobs the worker found a damaged block in (tests check the worker's verdict reaches the caller).
 *
 * @since 0.1.0
 * @category pool
 */
export const damaged = (): number => damagedFound

/**
 * Milliseconds callers have spent waiting for the worker to finish a block, in all (benchmarks:
 * with the caller's CPU time, what a get would take on an otherwise idle machine).
 *
 * @since 0.1.0
 * @category pool
 */
export const waitedMs = (): number => waited

/**
 * Resolves once the last job handed to the worker has settled (tests: the next decode finds it free).
 *
 * @since 0.1.0
 * @category pool
 */
export const settled = (): Promise<void> => lastJob.then(() => undefined)

/**
 * Stops the worker now, as if it died: a decode it is running falls back to the caller's thread.
 * For tests.
 *
 * @since 0.1.0
 * @category pool
 */
export const kill = (): Promise<void> => {
  const state = running
  if (state === undefined) return Promise.resolve()
  return state.worker.terminate().then(() => undefined)
}
