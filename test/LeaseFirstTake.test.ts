/**
 * A memoised miss takes its lease only while nothing is stored under the key (in one statement
 * where the store can, else it reads again under the lease): a value another process stored
 * between the miss's read and its lease answers the call, and the function does not run again.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as path from "node:path"
import * as BlobStoreMemory from "../src/blob/memory.js"
import * as Cache from "../src/Cache.js"
import * as CodecDefault from "../src/codec/registry.js"
import { cached } from "../src/index.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import * as MetadataStoreMemory from "../src/metadata/memory.js"
import { MetadataStore } from "../src/metadata/service.js"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { tempDir } from "./support/tmp.js"

const stores = {
  sqlite: () =>
    Layer.unwrapScoped(
      Effect.map(tempDir, (dir) => MetadataStoreSqlite.layer({ filename: path.join(dir, "cache.db") }))
    ),
  memory: () => MetadataStoreMemory.layer,
  // A store without the one-step take: the miss reads again under the lease.
  "memory without acquireLeaseIfAbsent": () =>
    Layer.effect(
      MetadataStore,
      Effect.map(MetadataStore, (store): MetadataStore.Service => ({ ...store, acquireLeaseIfAbsent: null }))
    ).pipe(Layer.provide(MetadataStoreMemory.layer))
} as const

for (const [name, store] of Object.entries(stores)) {
  describe(`cached miss on ${name}, the value stored after its read`, () => {
    it.scoped("answers with the stored value without running the function", () =>
      Effect.gen(function*() {
        // The next `blind` reads of an entry find nothing, as if it were stored just after them.
        let blind = 0
        const racing = Layer.effect(
          MetadataStore,
          Effect.map(MetadataStore, (inner): MetadataStore.Service => ({
            ...inner,
            probe: (key) => blind > 0 ? (blind--, Effect.succeed(Option.none())) : inner.probe(key),
            unsafeProbe: (key) => blind > 0 ? (blind--, null) : inner.unsafeProbe(key)
          }))
        ).pipe(Layer.provide(store()))
        const layer = Cache.layerFromServices({ cleanupOnOpen: false }).pipe(
          Layer.provide(Layer.mergeAll(HasherXxhash.layer, CodecDefault.layer(), racing, BlobStoreMemory.layer))
        )
        yield* Effect.gen(function*() {
          let runs = 0
          const f = cached((n: number) => Effect.sync(() => (runs++, n * 2)), { name: "double", memo: false })
          assert.strictEqual(yield* f(21), 42)
          assert.strictEqual(runs, 1)
          blind = 1
          assert.strictEqual(yield* f(21), 42)
          assert.strictEqual(blind, 0, "the call's read saw nothing")
          assert.strictEqual(runs, 1, "the stored value answered")
          const info = yield* f.info
          assert.deepStrictEqual([info.hits, info.misses], [1, 1])
          // Nothing is left held: another call computes a new key at once.
          assert.strictEqual(yield* f(22), 44)
          assert.strictEqual(runs, 2)
        }).pipe(Effect.provide(layer))
      }))
  })
}
