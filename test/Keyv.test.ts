// KeyvCacheness, the Keyv (v6) storage adapter of cacheness/keyv: the official Keyv compliance
// suite (@keyv/test-suite, run the way keyv's storage/sqlite package runs it: keyvTestSuite and
// keyvIteratorTests with a store factory), then store-level tests of the adapter itself, on
// SQLite and on PostgreSQL.
import keyvTestSuite, { keyvIteratorTests } from "@keyv/test-suite"
import { Keyv, type KeyvStorageAdapter } from "keyv"
import * as fs from "node:fs"
import * as vitest from "vitest"
import { afterAll, assert, beforeEach, describe, it } from "vitest"
import { cacheness, type CachenessClient, type CachenessOptions } from "../src/index.js"
import { DEFAULT_NAMESPACE, KeyvCacheness } from "../src/keyv.js"
import { pgAvailable, pgDescribe, pgSchema, pgUrl } from "./support/postgres.js"
import { makeTempDir } from "./support/tmp.js"

/**
 * @keyv/test-suite 2.1.2, the newest published, was written for Keyv 5. Two of its tests assert
 * Keyv 5 API that Keyv 6 itself changed — `delete([keys])` now resolves to one boolean per key,
 * and `keyv.deserialize` gave way to the `serialization` adapter — so they fail on Keyv 6 with any
 * store, its own Map included (the control below runs the suite on it). They run as `it.fails`:
 * should they start to pass, the test says so.
 */
const KEYV5_ONLY = new Set([
  ".deleteMany([keys]) with nonexistent keys resolves to false",
  "value can be BigInt using other serializer/deserializer"
])
const suiteVitest = {
  ...vitest,
  it: Object.assign(
    (name: string, fn: vitest.TestFunction) => KEYV5_ONLY.has(name) ? vitest.it.fails(name, fn) : vitest.it(name, fn),
    vitest.it
  )
}

describe("control: @keyv/test-suite on Keyv 6's own Map store", () => {
  keyvTestSuite(suiteVitest as never, Keyv as never, () => new Map())
})

/** The adapter is what Keyv's own types call a storage adapter. */
const typed = (store: KeyvCacheness): KeyvStorageAdapter => store as unknown as KeyvStorageAdapter

const run = (name: string, config: () => CachenessOptions) => {
  describe(`KeyvCacheness on ${name}`, () => {
    let client: CachenessClient
    vitest.beforeAll(() => {
      client = cacheness({ defaultTtl: null, maxSize: null, ...config() })
    })
    afterAll(() => client.close())
    // One adapter per Keyv (Keyv sets its namespace on its store), all on one client.
    const store = () => new KeyvCacheness(client)

    describe("@keyv/test-suite", () => {
      // The suite's types name its own nested vitest 4; at run time it calls this file's vitest.
      keyvTestSuite(suiteVitest as never, Keyv as never, store)
      keyvIteratorTests(suiteVitest as never, Keyv as never, store)
    })

    describe("the adapter", () => {
      beforeEach(async () => {
        await store().clear()
        const ns = store()
        ns.namespace = "ns"
        await ns.clear()
      })

      it("declares the v6 storage contract: every method, asynchronous, with absolute expires", () => {
        const s = store()
        assert.strictEqual(s.capabilities.expires, true)
        assert.strictEqual(s.capabilities.store, "keyvStorage")
        for (const method of Object.values(s.capabilities.methods)) {
          assert.deepStrictEqual(method, { exists: true, methodType: "async" })
        }
        // So Keyv uses it directly, not through its bridge for ttl-based adapters.
        assert.strictEqual(new Keyv({ store: typed(s) }).store as unknown, s)
      })

      it("namespace: undefined until Keyv sets it; Keyv's namespace is the cacheness namespace", async () => {
        const s = store()
        assert.isUndefined(s.namespace)
        const keyv = new Keyv({ store: typed(s), namespace: "users" })
        assert.strictEqual(s.namespace, "users")
        await keyv.set("ada", { name: "Ada" })
        const entries = await client.list({ namespace: "users" })
        assert.deepStrictEqual(entries.map((e) => e.params), [{ key: "ada" }])
        await store().set("plain", "x")
        assert.strictEqual((await client.list({ namespace: DEFAULT_NAMESPACE })).length, 1)
        s.namespace = undefined
        assert.isUndefined(s.namespace)
      })

      it("set/get/has/delete round-trip; a missing key is undefined", async () => {
        const s = store()
        assert.strictEqual(await s.set("k", "v"), true)
        assert.strictEqual(await s.get("k"), "v")
        assert.strictEqual(await s.has("k"), true)
        assert.strictEqual(await s.get("nothing"), undefined)
        assert.strictEqual(await s.has("nothing"), false)
        assert.strictEqual(await s.delete("k"), true)
        assert.strictEqual(await s.delete("k"), false)
        assert.strictEqual(await s.has("k"), false)
      })

      it("values are stored natively (Keyv with serialization: false)", async () => {
        const keyv = new Keyv({ store: typed(store()), serialization: false })
        const bytes = new Uint8Array([1, 2, 3])
        await keyv.set("bytes", bytes)
        await keyv.set("object", { a: [1, 2], d: 1n })
        const read = await keyv.get<Uint8Array>("bytes")
        assert.instanceOf(read, Uint8Array)
        assert.deepStrictEqual(await keyv.get("object"), { a: [1, 2], d: 1n })
      })

      it("getMany, setMany, hasMany, deleteMany: in order, empty arrays too", async () => {
        const s = store()
        assert.deepStrictEqual(await s.setMany([{ key: "a", value: 1 }, { key: "b", value: 2 }]), [true, true])
        assert.deepStrictEqual(await s.getMany(["b", "missing", "a"]), [2, undefined, 1])
        assert.deepStrictEqual(await s.hasMany(["a", "missing"]), [true, false])
        assert.deepStrictEqual(await s.deleteMany(["a", "missing"]), [true, false])
        assert.deepStrictEqual(await s.getMany([]), [])
        assert.deepStrictEqual(await s.hasMany([]), [])
        assert.deepStrictEqual(await s.deleteMany([]), [])
        assert.deepStrictEqual(await s.setMany([]), [])
      })

      it("absolute expires become entry TTLs; a deadline already past stores nothing", async () => {
        const s = store()
        const now = Date.now()
        await s.set("later", "v", now + 60_000)
        await s.set("past", "v", now - 1)
        await s.setMany([{ key: "m1", value: 1, expires: now + 120_000 }, { key: "m2", value: 2, expires: now - 5 }, {
          key: "m3",
          value: 3
        }])
        const entries = new Map((await client.list({ namespace: DEFAULT_NAMESPACE })).map((e) => [e.params?.key, e]))
        assert.closeTo(entries.get("later")!.expiresAt!, now + 60_000, 5_000)
        assert.closeTo(entries.get("m1")!.expiresAt!, now + 120_000, 5_000)
        assert.strictEqual(entries.get("m3")!.expiresAt, null)
        assert.isFalse(entries.has("past"))
        assert.isFalse(entries.has("m2"))
        assert.strictEqual(await s.get("past"), undefined)
      })

      it("an expired entry is gone from get, has and the iterator", async () => {
        const s = store()
        await s.set("short", "v", Date.now() + 100)
        await s.set("long", "w")
        await new Promise((r) => setTimeout(r, 250))
        assert.strictEqual(await s.get("short"), undefined)
        assert.strictEqual(await s.has("short"), false)
        const seen: Array<[string, unknown]> = []
        for await (const pair of s.iterator()) seen.push(pair)
        assert.deepStrictEqual(seen, [["long", "w"]])
      })

      it("clear and the iterator see one namespace; iterator(namespace) names another", async () => {
        const plain = store()
        const ns = store()
        ns.namespace = "ns"
        await plain.set("k", "plain")
        await ns.set("k", "in ns")
        await ns.set("k2", "in ns 2")
        const pairs: Array<[string, unknown]> = []
        for await (const pair of plain.iterator("ns")) pairs.push(pair)
        assert.deepStrictEqual(pairs, [["k", "in ns"], ["k2", "in ns 2"]])
        await ns.clear()
        assert.strictEqual(await ns.get("k"), undefined)
        assert.strictEqual(await plain.get("k"), "plain")
        const empty: Array<unknown> = []
        for await (const pair of ns.iterator()) empty.push(pair)
        assert.deepStrictEqual(empty, [])
      })

      it("a key that looks like a digest is a key like any other", async () => {
        const s = store()
        const digest = await client.put({ model: "m" }, "the cache's entry", { ttl: null })
        await s.set(digest, "the adapter's entry")
        assert.strictEqual(await s.get(digest), "the adapter's entry")
        assert.strictEqual(await client.get(digest), "the cache's entry")
      })

      it("disconnect leaves a client passed in open", async () => {
        const s = store()
        await s.disconnect()
        assert.strictEqual(await store().set("still", "open"), true)
      })
    })
  })
}

const directory = makeTempDir()
afterAll(() => fs.rmSync(directory, { recursive: true, force: true }))
run("SQLite", () => ({ directory }))

pgDescribe("KeyvCacheness on PostgreSQL", () => {
  const schema = pgSchema("keyv")
  if (pgAvailable) {
    run("PostgreSQL", () => ({ metadataBackend: "postgres", blobs: "postgres", postgres: { url: pgUrl, schema } }))
  }
})

describe("KeyvCacheness from a configuration", () => {
  it("opens its own cache, with no default TTL and no size limit, and closes it on disconnect", async () => {
    const dir = makeTempDir()
    try {
      const s = new KeyvCacheness({ directory: dir })
      const keyv = new Keyv({ store: typed(s) })
      await keyv.set("k", "v")
      const [entry] = await s.client.list({ namespace: DEFAULT_NAMESPACE })
      assert.strictEqual(entry.expiresAt, null)
      assert.strictEqual((await s.client.stats()).maxSize, null)
      await keyv.disconnect()
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("bad arguments throw a ConfigError", () => {
    assert.throws(() => new KeyvCacheness("./dir" as never), /expected a cacheness configuration or client/)
    assert.throws(() => new KeyvCacheness(undefined, { namespase: "x" } as never), /unknown option "namespase"/)
    assert.throws(() => new KeyvCacheness(undefined, { namespace: 1 } as never), /expected a string/)
  })
})
