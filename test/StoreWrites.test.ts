/**
 * Wrappers that must notice every write of a MetadataStore: PostgreSQL's change count (a write of
 * this process counts at once, before its notification comes back) and the memory tier's check
 * after this process's own writes. Both take the writes from one list; these tests drive every
 * write through each wrapper and count what was noticed.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { watchWrites } from "../src/cache/memoryTier.js"
import * as Memory from "../src/metadata/memory.js"
import * as PgChanges from "../src/metadata/pgChanges.js"
import type { MetadataStore } from "../src/metadata/service.js"
import { record } from "../src/testing/MetadataStoreSuite.js"

/** One call of every write, each on its own entry; the number of calls. */
const everyWrite = (store: MetadataStore.Service) =>
  Effect.gen(function*() {
    yield* store.upsert(record("a"))
    yield* store.upsertMany([{ record: record("b") }, { record: record("c") }])
    yield* store.touch("a", Date.now() + 60_000, Date.now())
    yield* store.remove({ keys: ["a"] })
    yield* store.removeCounted({ keys: ["b"] })
    yield* store.evict(1)
    const c = record("c")
    yield* store.repairSize("c", c.blobId, c.checksum, 10)
    yield* store.clear
    return 8
  })

describe("every write is noticed", () => {
  it.effect("PostgreSQL's change count counts this process's own writes, upsertMany included", () =>
    Effect.gen(function*() {
      let bumps = 0
      const store = PgChanges.attach(yield* Memory.make(), { count: () => bumps, bump: () => void bumps++ })
      yield* store.upsertMany([{ record: record("x") }])
      assert.strictEqual(bumps, 1, "upsertMany counted at once")
      const calls = yield* everyWrite(store)
      assert.strictEqual(bumps, 1 + calls)
    }))

  it.effect("the memory tier's own-write check sees the same writes", () =>
    Effect.gen(function*() {
      let writes = 0
      const store = watchWrites(yield* Memory.make(), () => void writes++)
      const calls = yield* everyWrite(store)
      assert.strictEqual(writes, calls)
    }))
})
