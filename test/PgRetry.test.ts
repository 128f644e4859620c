import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { isConflict, retryConflict } from "../src/shared/pgRetry.js"

/** A statement that fails like `pg` does (an SqlError around the driver's error with its code) `failures` times. */
const flaky = (code: string, failures: number) => {
  let calls = 0
  const statement = Effect.suspend(() =>
    ++calls <= failures
      ? Effect.fail(new SqlError({ cause: Object.assign(new Error(`pg ${code}`), { code }), message: "failed" }))
      : Effect.succeed("committed")
  )
  return { statement, calls: () => calls }
}

describe("PostgreSQL writes aborted to break a deadlock", () => {
  it.effect("a deadlock (40P01) or serialization failure (40001) is run again, and then succeeds", () =>
    Effect.gen(function*() {
      for (const code of ["40P01", "40001"]) {
        const { calls, statement } = flaky(code, 2)
        const fiber = yield* Effect.fork(retryConflict(statement))
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* fiber.await.pipe(Effect.flatten), "committed")
        assert.strictEqual(calls(), 3)
      }
    }))

  it.effect("any other failure is not retried: a constraint violation or a lost connection surfaces at once", () =>
    Effect.gen(function*() {
      for (const code of ["23505", "08006", "57P01"]) {
        const { calls, statement } = flaky(code, 1)
        const error = yield* Effect.flip(retryConflict(statement))
        assert.strictEqual(error._tag, "SqlError")
        assert.isFalse(isConflict(error))
        assert.strictEqual(calls(), 1, code)
      }
    }))

  it.effect("a conflict that persists surfaces after four retries", () =>
    Effect.gen(function*() {
      const { calls, statement } = flaky("40P01", 100)
      const fiber = yield* Effect.fork(Effect.flip(retryConflict(statement)))
      yield* TestClock.adjust("1 minute")
      const error = yield* fiber.await.pipe(Effect.flatten)
      assert.isTrue(isConflict(error))
      assert.strictEqual(calls(), 5)
    }))
})
