/**
 * `list()` and `stats()` through the Promise API run synchronously as far as the store allows
 * (`callFast`): the same answers as the Effect service, in the same order, failures as rejections,
 * and a store that answers asynchronously (PostgreSQL) awaited on the fiber that started.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import * as fs from "node:fs"
import * as Cache from "../src/Cache.js"
import { cacheness, type CachenessClient } from "../src/promise.js"
import { pgDescribe, pgSchema, pgUrl } from "./support/postgres.js"
import { makeTempDir } from "./support/tmp.js"

const quiet = { cleanupOnOpen: false, cleanupInterval: "100000 days", maxSize: null } as const

/** Fills `client`, then checks its listing and counts against the Effect service of the same cache. */
const sameAsService = async (client: CachenessClient) => {
  for (let i = 0; i < 30; i++) {
    await client.put({ user: i }, { id: i, name: `user-${i}` }, {
      ttl: i % 3 === 0 ? "1 hour" : null,
      tags: i % 2 === 0 ? ["even"] : [],
      namespace: i % 5 === 0 ? "fifth" : undefined
    })
  }
  await client.get({ user: 1 })
  await client.get({ user: 1000 })
  const service = await client.run(Cache.Cache)
  const listed = await client.list()
  assert.deepStrictEqual(listed, await Effect.runPromise(service.list()))
  assert.strictEqual(listed.length, 30)
  // Insertion order, namespaces, tags and expiry as stored.
  assert.deepStrictEqual(
    listed.map((e) => (e.params as { user: number }).user),
    Array.from({ length: 30 }, (_, i) => i)
  )
  assert.deepStrictEqual(listed[2]!.tags, ["even"])
  assert.deepStrictEqual(listed[1]!.tags, [])
  assert.strictEqual(listed[5]!.namespace, "fifth")
  assert.strictEqual(listed[1]!.expiresAt, null)
  assert.isNumber(listed[3]!.expiresAt)
  const page = await client.list({ orderBy: "key", descending: true, limit: 4, tag: "even" })
  assert.deepStrictEqual(
    page,
    await Effect.runPromise(service.list({ orderBy: "key", descending: true, limit: 4, tag: "even" }))
  )
  assert.strictEqual(page.length, 4)
  const stats = await client.stats()
  const viaService = await Effect.runPromise(service.stats())
  assert.deepStrictEqual(stats, viaService)
  assert.strictEqual(stats.entries, 30)
  assert.strictEqual(stats.totalBytes, listed.reduce((n, e) => n + e.storedBytes, 0))
  assert.strictEqual((await client.stats({ namespace: "fifth" })).entries, 6)
}

describe("Promise list() and stats()", () => {
  it("answer what the Effect service answers, on SQLite", async () => {
    const directory = makeTempDir()
    const client = cacheness({ ...quiet, directory })
    try {
      await sameAsService(client)
    } finally {
      await client.close()
      fs.rmSync(directory, { recursive: true, force: true })
    }
  })

  it("answer before the first operation has opened the cache, and reject bad options without throwing", async () => {
    const directory = makeTempDir()
    const client = cacheness({ ...quiet, directory })
    try {
      // The very first call: the runtime is not built yet.
      assert.deepStrictEqual(await client.list(), [])
      assert.strictEqual((await client.stats()).entries, 0)
      const listing = client.list({ limit: -1 })
      const stats = client.stats({ namespace: 7 as unknown as string })
      assert.instanceOf(listing, Promise)
      assert.instanceOf(stats, Promise)
      const listError = await listing.then(() => undefined, (e: unknown) => e)
      const statsError = await stats.then(() => undefined, (e: unknown) => e)
      assert.strictEqual((listError as { _tag?: string })?._tag, "ConfigError")
      assert.strictEqual((statsError as { _tag?: string })?._tag, "ConfigError")
    } finally {
      await client.close()
      fs.rmSync(directory, { recursive: true, force: true })
    }
  })

  // stats() skips its span under Effect's default tracer, which records nothing; any other
  // tracer gets the span as before, with the caller's span as its parent, and the same answer.
  it.effect("stats() makes its Cache.stats span under a tracer that records spans", () =>
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      yield* cache.put({ user: 1 }, "one")
      // Effect's own spans, kept: a tracer that records what it is asked to make.
      const native = yield* Effect.tracer
      const spans: Array<Tracer.Span> = []
      const recording = Tracer.make({
        span: (...args) => {
          const span = native.span(...args)
          spans.push(span)
          return span
        },
        context: (f) => f()
      })
      const untraced = yield* cache.stats()
      assert.deepStrictEqual(spans, [])
      const [traced, outer] = yield* Effect.withSpan(
        Effect.zip(cache.stats(), Effect.currentSpan),
        "caller"
      ).pipe(Effect.withTracer(recording))
      assert.deepStrictEqual(traced, untraced)
      assert.deepStrictEqual(spans.map((s) => [s.name, s.status._tag]), [["caller", "Ended"], ["Cache.stats", "Ended"]])
      assert.strictEqual(Option.getOrThrow(spans[1]!.parent).spanId, outer.spanId)
      assert.strictEqual(untraced.entries, 1)
    }).pipe(Effect.provide(Cache.layerMemory(quiet))))
})

pgDescribe("Promise list() and stats() on PostgreSQL (asynchronous store)", () => {
  const schema = pgSchema("promise_listing")
  it("await the store and answer what the Effect service answers", async () => {
    const client = cacheness({
      ...quiet,
      metadataBackend: "postgres",
      blobs: "postgres",
      postgres: { url: pgUrl, schema }
    })
    try {
      await sameAsService(client)
    } finally {
      await client.close()
    }
  }, 60_000)
})
