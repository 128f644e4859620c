/**
 * When a PostgreSQL statement may be repeated: reads that met a dead connection, shared by the
 * metadata and blob stores so both follow the policy docs/RELIABILITY.md states.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

/**
 * The PostgreSQL error code behind an `SqlError`, if any.
 *
 * @since 0.1.0
 * @category errors
 */
export const pgCode = (cause: unknown): string | undefined => {
  const inner = typeof cause === "object" && cause !== null && "cause" in cause ? (cause as any).cause : cause
  return typeof inner === "object" && inner !== null && "code" in inner ? String(inner.code) : undefined
}

const text = (cause: unknown): string => {
  const inner = typeof cause === "object" && cause !== null && "cause" in cause ? (cause as any).cause : undefined
  const outer = cause instanceof Error ? cause.message : String(cause)
  return inner instanceof Error && inner.message !== outer ? `${outer}: ${inner.message}` : outer
}

/**
 * The connection died under the statement: terminated by an administrator or a restart
 * (57P01–57P03), a connection failure (class 08), or the socket closed without a code.
 *
 * @since 0.1.0
 * @category errors
 */
export const isConnectionLost = (cause: unknown): boolean => {
  const code = pgCode(cause) ?? ""
  if (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03") return true
  return /Connection terminated|connection is closed|ECONNRESET|EPIPE/i.test(text(cause))
}

/**
 * Reads are safe to repeat, so one on a connection that died is retried on a fresh one from the
 * pool (twice, 50 ms then 100 ms apart). Writes are not retried: a commit whose answer was lost
 * would be applied twice, or its result (the replaced blob to delete) lost.
 *
 * @since 0.1.0
 * @category retrying
 */
export const retryRead = <A, E>(self: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.retry(self, { schedule: Schedule.exponential("50 millis"), times: 2, while: isConnectionLost })

/**
 * PostgreSQL broke a deadlock (40P01) or a serialization conflict (40001) by aborting this
 * statement's transaction: nothing of it was committed, so running it again is safe. Concurrent
 * writers meet these in normal operation (two flushes of overlapping hit counts, a removal
 * cascading into rows another upsert holds); each is retried up to four times, 20 ms apart and
 * doubling, jittered so the two sides do not collide again.
 *
 * @since 0.1.0
 * @category errors
 */
export const isConflict = (cause: unknown): boolean => {
  const code = pgCode(cause)
  return code === "40P01" || code === "40001"
}

/**
 * Retries a whole write (one statement or one transaction, never a part of an open transaction)
 * that PostgreSQL aborted to break a deadlock or a serialization conflict; see `isConflict`.
 *
 * @since 0.1.0
 * @category retrying
 */
export const retryConflict = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.retry(self, {
    schedule: Schedule.exponential("20 millis").pipe(Schedule.jittered),
    times: 4,
    while: isConflict
  })
