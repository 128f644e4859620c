// The next result of a size is faulted in by threadpool reads issued all at once when a result of
// that size is taken (`Prefault.fill`): the fill needs no turn of this thread's event loop between
// pieces, so a get that keeps this thread busy (decoding, then the caller's next put) still finds
// the spare ready. A chain of pieces, each issued from the last one's callback, stalled there. A
// get that comes while the spare is still being filled takes it as it is and waits for the fill
// below where it writes (`BufferPool.resultWaiting`), instead of faulting in fresh memory beside it.
// The fill starts in the turn after the result was taken, so it does not take the second core
// from the decode that took it, and is split into reads of 16 MiB (at most four) side by side.
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Cache from "../src/Cache.js"
import * as BufferPool from "../src/shared/bufferPool.js"
import * as Prefault from "../src/shared/prefault.js"
import { tempDir } from "./support/tmp.js"

const MiB = 1 << 20
const hasZero = process.platform !== "win32"

/** Blocks this thread (no event-loop turn) for `ms`, as a long synchronous decode would. */
const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
const turn = () => new Promise((resolve) => setImmediate(resolve))
const pendingReads = () => process.getActiveResourcesInfo().filter((r) => r === "FSReqCallback").length

describe.skipIf(!hasZero)("array gets: the result's spare, faulted in without this thread", () => {
  it.effect("Prefault.fill issues every read at once, zeroes every byte, and says when a range is ready", () =>
    Effect.gen(function*() {
      const bytes = new Uint8Array(10 * MiB + 4096 * 3).fill(7)
      const before = pendingReads()
      const fill = Prefault.fill(bytes, 3)!
      assert.isDefined(fill)
      assert.strictEqual(pendingReads() - before, 3, "all three reads issued before fill returned")
      assert.isDefined(fill.ready(1), "the bottom share is still being read")
      assert.isTrue(yield* Effect.promise(() => fill.done))
      assert.isUndefined(fill.ready(bytes.byteLength))
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

  it.effect("a spare still being filled is handed out with its wait, once, and the next one follows it", () =>
    Effect.gen(function*() {
      const size = 40 * MiB
      BufferPool.result(size)
      yield* Effect.promise(turn)
      assert.deepStrictEqual(BufferPool.sparesFilling().filter((s) => s === size), [size])
      const { buffer, ready } = BufferPool.resultWaiting(size)
      assert.strictEqual(buffer.byteLength, size)
      assert.isDefined(ready, "the spare being filled was not handed out")
      // Handed out: not filled for anyone else, and no second fill beside it.
      assert.notInclude(BufferPool.sparesFilling(), size)
      assert.notInclude(BufferPool.sparesReady(), size)
      const wait = ready!(size)
      if (wait !== undefined) yield* Effect.promise(() => wait)
      assert.isUndefined(ready!(size))
      assert.isTrue(new Uint8Array(buffer).every((b) => b === 0))
      // The next spare of the size is prepared once this fill ended.
      for (let i = 0; i < 200 && !BufferPool.sparesReady().includes(size); i++) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
      }
      assert.include(BufferPool.sparesReady(), size)
      const next = BufferPool.resultWaiting(size)
      assert.isUndefined(next.ready)
      assert.isTrue(BufferPool.prefaulted(next.buffer))
      assert.notStrictEqual(next.buffer, buffer)
    }))

  it.effect("the next spare starts filling in the next turn, in reads of 16 MiB side by side", () =>
    Effect.gen(function*() {
      // The fills earlier tests started end first, so only this one's reads are counted.
      yield* Effect.promise(turn)
      for (let i = 0; i < 200 && BufferPool.sparesFilling().length > 0; i++) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
      }
      const size = 56 * MiB
      BufferPool.result(size)
      // Not beside the decode that took the result: nothing is read until this turn ends.
      assert.notInclude(BufferPool.sparesFilling(), size)
      const before = pendingReads()
      yield* Effect.promise(turn)
      assert.include(BufferPool.sparesFilling(), size)
      // 56 MiB: four reads at once (at most four), so a get waits only for those below its block.
      assert.strictEqual(pendingReads() - before, 4)
      const { buffer, ready } = BufferPool.resultWaiting(size)
      assert.isDefined(ready)
      const bottom = ready!(16 * MiB)
      if (bottom !== undefined) yield* Effect.promise(() => bottom)
      const whole = ready!(size)
      if (whole !== undefined) yield* Effect.promise(() => whole)
      assert.isTrue(new Uint8Array(buffer).every((b) => b === 0))
    }))

  it.scoped(
    "gets one after another, no pause, decode into the spare being filled, every byte their own",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const cache = yield* Layer.build(Cache.layer({ directory, cleanupOnOpen: false })).pipe(
          Effect.map(Context.get(Cache.Cache))
        )
        const ramp = new Int32Array(8 * MiB).map((_, i) => i * 7)
        yield* cache.put({ value: "ramp" }, ramp)
        let tookFilling = 0
        for (let i = 0; i < 4; i++) {
          if (BufferPool.sparesFilling().includes(ramp.byteLength)) tookFilling++
          const back = Option.getOrThrow(yield* cache.get({ value: "ramp" })) as Int32Array
          assert.isTrue(Buffer.from(back.buffer).equals(Buffer.from(ramp.buffer)), `get ${i}: bytes differ`)
        }
        // The first get prepares a spare; the ones right after it find it being filled.
        assert.isAtLeast(tookFilling, 1)
      }),
    { timeout: 60_000 }
  )
})
