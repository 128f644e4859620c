// The next result of a size is faulted in by threadpool reads issued all at once when a result of
// that size is taken (`Prefault.fill`): the fill needs no turn of this thread's event loop between
// pieces, so a get that keeps this thread busy (decoding, then the caller's next put) still finds
// the spare ready. A chain of pieces, each issued from the last one's callback, stalled there.
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as BufferPool from "../src/shared/bufferPool.js"
import * as Prefault from "../src/shared/prefault.js"

const MiB = 1 << 20
const hasZero = process.platform !== "win32"

/** Blocks this thread (no event-loop turn) for `ms`, as a long synchronous decode would. */
const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
const turn = () => new Promise((resolve) => setImmediate(resolve))

describe.skipIf(!hasZero)("array gets: the result's spare, faulted in without this thread", () => {
  it.effect("Prefault.fill issues every read at once and zeroes every byte", () =>
    Effect.gen(function*() {
      const bytes = new Uint8Array(10 * MiB + 4096 * 3).fill(7)
      const pending = () => process.getActiveResourcesInfo().filter((r) => r === "FSReqCallback").length
      const before = pending()
      let calls = 0
      const done = yield* Effect.promise(() =>
        new Promise<boolean>((resolve) => {
          assert.isTrue(Prefault.fill(bytes, 3, (ok) => {
            calls++
            resolve(ok)
          }))
          assert.strictEqual(pending() - before, 3, "all three reads issued before fill returned")
        })
      )
      assert.isTrue(done)
      yield* Effect.promise(turn)
      assert.strictEqual(calls, 1)
      assert.isTrue(bytes.every((b) => b === 0))
    }))

  it.effect("a spare is ready after one event-loop turn, however long this thread was busy", () =>
    Effect.gen(function*() {
      const size = 48 * MiB
      BufferPool.result(size)
      let turns = 0
      // Each turn comes after this thread was busy long enough for the threadpool to finish a
      // fill; the old chain (open, then 16 MiB reads one after another) needed a turn per step.
      while (!BufferPool.sparesReady().includes(size) && turns < 8) {
        block(500)
        yield* Effect.promise(turn)
        turns++
      }
      assert.isTrue(BufferPool.sparesReady().includes(size))
      assert.isAtMost(turns, 2)
      const spare = BufferPool.result(size)
      assert.isTrue(BufferPool.prefaulted(spare))
      assert.strictEqual(spare.byteLength, size)
    }))
})
