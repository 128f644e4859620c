/**
 * Read-modify-write made atomic across processes: the adapters run it under the lease the engine
 * already keeps for `cached` (a row in the metadata store, shared by every process on the same
 * directory or PostgreSQL database).
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { randomUUID } from "node:crypto"
import { type CacheInternal, internal } from "../cache/internal.js"
import type { Cache, CacheError } from "../cache/service.js"
import type { CacheKey } from "../schema/CacheKey.js"

/**
 * How long a lease lasts: a read-modify-write holding it for longer is presumed dead (its process
 * killed) and another may take over.
 */
const LEASE_MS = 10_000

/** Leases are timed in real time, like `cached`'s: other processes share them. */
const wallClock = Clock.make()

/** Quickly at first (a modify takes a millisecond or two), at most every 50 ms, with jitter. */
const retry = Schedule.exponential("1 millis", 1.5).pipe(
  Schedule.union(Schedule.spaced("50 millis")),
  Schedule.jittered
)

const internalOf = (cache: Cache.Service): CacheInternal | undefined => {
  try {
    return internal(cache)
  } catch {
    return undefined
  }
}

/** A cache written by hand has no leases: its read-modify-writes are made atomic in this process only. */
const locals = new WeakMap<Cache.Service, Effect.Semaphore>()
const localLock = (cache: Cache.Service): Effect.Semaphore => {
  let lock = locals.get(cache)
  if (lock === undefined) {
    lock = Effect.unsafeMakeSemaphore(1)
    locals.set(cache, lock)
  }
  return lock
}

/**
 * Runs `effect` while holding the lease on `key`: no other process or fiber holding it through
 * this function runs at the same time. Waits (polling) while another holds it.
 *
 * @since 0.1.0
 * @category concurrency
 */
export const exclusive = <A, E>(
  cache: Cache.Service,
  key: CacheKey,
  effect: Effect.Effect<A, E>
): Effect.Effect<A, E | CacheError> => {
  const support = internalOf(cache)
  if (support === undefined) return localLock(cache).withPermits(1)(effect)
  const memo = support.memo
  return Effect.suspend(() => {
    const holder = `${process.pid}:${randomUUID()}`
    const acquire = memo.acquireLease(key, holder, LEASE_MS).pipe(
      Effect.repeat({ schedule: retry, until: (taken) => taken }),
      Effect.withClock(wallClock)
    )
    const release = memo.releaseLease(key, holder).pipe(
      Effect.withClock(wallClock),
      Effect.catchAll((error) => Effect.logWarning(`cacheness: could not release a lease: ${error.message}`))
    )
    // Waiting may be interrupted; a lease taken just as the wait is interrupted expires in LEASE_MS.
    return Effect.acquireUseRelease(Effect.interruptible(acquire), () => effect, () => release)
  })
}
