/**
 * Background work (housekeeping, batched access writes) must never keep a process alive: a script
 * that forgets `close()` still exits. Its fibers sleep on this clock, whose timers are unref'd;
 * what they would have written is flushed by a `beforeExit` hook instead, which runs only once
 * the event loop is otherwise empty and so keeps nothing alive either.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"

const live = Clock.make()

/**
 * The live clock, with sleeps that do not hold the event loop open.
 *
 * @since 0.1.0
 * @category clock
 */
export const daemonClock: Clock.Clock = {
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => live.unsafeCurrentTimeMillis(),
  unsafeCurrentTimeNanos: () => live.unsafeCurrentTimeNanos(),
  currentTimeMillis: live.currentTimeMillis,
  currentTimeNanos: live.currentTimeNanos,
  sleep: (duration) =>
    Effect.async<void>((resume) => {
      // setTimeout takes at most 2^31 - 1 ms (and fires at once beyond): wait longer in steps.
      let remaining = Duration.toMillis(duration)
      let timer: ReturnType<typeof setTimeout>
      const wait = () => {
        const step = Math.min(remaining, MAX_TIMER_MILLIS)
        remaining -= step
        timer = setTimeout(() => (remaining > 0 ? wait() : resume(Effect.void)), step)
        timer.unref()
      }
      wait()
      return Effect.sync(() => clearTimeout(timer))
    })
}

const MAX_TIMER_MILLIS = 2 ** 31 - 1

/**
 * Runs `self` on `daemonClock` when the fiber's clock is the live one; under a `TestClock` (or any
 * other clock a program installed) it is left alone, so tests still drive it.
 *
 * @since 0.1.0
 * @category clock
 */
export const asDaemon = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(
    Effect.clock,
    (clock) => Object.getPrototypeOf(clock) === Object.getPrototypeOf(live) ? Effect.withClock(self, daemonClock) : self
  )

/**
 * While the scope is open, runs `flush` when the process is about to exit with `pending()` work
 * left (a script that never closed its cache). The hook runs again after an asynchronous flush
 * empties the loop once more; a flush that fails is not retried there, so exit is never blocked.
 *
 * @since 0.1.0
 * @category lifecycle
 */
export const flushBeforeExit = (
  flush: Effect.Effect<void, unknown>,
  pending: () => boolean
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) => {
    let running = false
    let failed = false
    const hook = () => {
      if (running || failed || !pending()) return
      running = true
      Runtime.runCallback(runtime)(
        Effect.ignoreLogged(Effect.tapError(flush, () => Effect.sync(() => (failed = true)))),
        {
          onExit: () => (running = false)
        }
      )
    }
    return Effect.acquireRelease(
      Effect.sync(() => process.on("beforeExit", hook)),
      () => Effect.sync(() => process.off("beforeExit", hook))
    )
  })
