// The cache with `blobs: "s3"`, through its public API, against a local S3-compatible server
// (s3rver, in this process): where values go, what removes objects, what a damaged or missing
// object reads as, a server that goes away mid-put, orphans, and S3 errors as StorageErrors.
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client
} from "@aws-sdk/client-s3"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as path from "node:path"
import { layerConfig } from "../src/cache/layer.js"
import { Cache, cacheness, type CachenessOptions, ConfigError, StorageError } from "../src/index.js"
import { bucket, credentials, type S3Server, startFaultyProxy, startS3 } from "./support/s3.js"
import { makeTempDir } from "./support/tmp.js"

const MiB = 1024 * 1024

let server: S3Server
const directories: Array<string> = []
beforeAll(async () => {
  server = await startS3()
})
afterAll(async () => {
  await server?.stop()
  for (const directory of directories) fs.rmSync(directory, { recursive: true, force: true })
})

let prefixes = 0
/** A fresh prefix of the one bucket per cache, so each test sees only its own objects. */
const s3Options = (endpoint = server.endpoint, prefix = `c${++prefixes}/`) => ({
  bucket,
  prefix,
  endpoint,
  forcePathStyle: true,
  credentials: { ...credentials }
})

const directory = () => {
  const dir = makeTempDir()
  directories.push(dir)
  return dir
}

/** A SQLite cache in a fresh directory whose blobs go to the bucket under a fresh prefix. */
const open = (extra: Partial<CachenessOptions> = {}, s3 = s3Options()) => {
  const config: CachenessOptions = {
    directory: directory(),
    blobs: "s3",
    s3,
    maxSize: null,
    defaultTtl: null,
    ...extra
  }
  return { cache: cacheness(config), s3, config }
}

const raw = (endpoint = server.endpoint) =>
  new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { ...credentials } })

const objectsUnder = async (prefix: string, endpoint = server.endpoint): Promise<Array<string>> => {
  const client = raw(endpoint)
  try {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))
    return (page.Contents ?? []).map((object) => object.Key!).sort()
  } finally {
    client.destroy()
  }
}

/** Deterministic bytes that do not compress (xorshift32 from `seed`). */
const noise = (length: number, seed: number): Uint8Array => {
  const out = new Uint8Array(length)
  let x = seed | 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

const same = (a: Uint8Array | undefined, b: Uint8Array) => a !== undefined && Buffer.from(a).equals(Buffer.from(b))

/** s3rver keeps each object as a file; backdating it makes the object that old to the server. */
const backdate = (key: string, ms: number) => {
  const file = path.join(server.directory, bucket, `${key}._S3rver_object`)
  const then = new Date(Date.now() - ms)
  fs.utimesSync(file, then, then)
}

const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected the call to fail")
}

describe("Cache with blobs in S3", () => {
  it("large values go to the bucket as prefix + <key>-<version>; small ones stay inline", async () => {
    const { cache, s3 } = open()
    try {
      const small = { model: "xgboost", scores: [0.5, 0.7] }
      await cache.put({ k: "small" }, small)
      assert.deepStrictEqual(await objectsUnder(s3.prefix), [], "a small value writes no object")

      const large = noise(200_000, 1)
      const key = await cache.put({ k: "large" }, large)
      const objects = await objectsUnder(s3.prefix)
      assert.strictEqual(objects.length, 1)
      assert.match(objects[0], new RegExp(`^${s3.prefix}${key}-[0-9a-z]+$`))
      assert.deepStrictEqual(await cache.get({ k: "small" }), small)
      assert.isTrue(same(await cache.get<Uint8Array>({ k: "large" }), large))
      assert.strictEqual((await cache.stats()).entries, 2)

      // An overwrite is a fresh object; the replaced one is deleted.
      const larger = noise(300_000, 2)
      await cache.put({ k: "large" }, larger)
      const after = await objectsUnder(s3.prefix)
      assert.strictEqual(after.length, 1)
      assert.notStrictEqual(after[0], objects[0])
      assert.isTrue(same(await cache.get<Uint8Array>({ k: "large" }), larger))
    } finally {
      await cache.close()
    }
  })

  it("invalidate, invalidateWhere, eviction and clear delete the objects", async () => {
    const { cache, s3 } = open({ maxSize: "1 MB" })
    try {
      await cache.put({ k: 1 }, noise(100_000, 3))
      await cache.put({ k: 2 }, noise(100_000, 4))
      assert.strictEqual((await objectsUnder(s3.prefix)).length, 2)
      assert.isTrue(await cache.invalidate({ k: 1 }))
      assert.strictEqual((await objectsUnder(s3.prefix)).length, 1)
      assert.strictEqual(await cache.invalidateWhere({ params: { k: 2 } }), 1)
      assert.deepStrictEqual(await objectsUnder(s3.prefix), [])

      // 12 × 100 KB over a 1 MB limit: the least recently used are evicted down to 80%, objects too.
      for (let i = 0; i < 12; i++) await cache.put({ e: i }, noise(100_000, 10 + i))
      const stats = await cache.stats()
      assert.isBelow(stats.entries, 12)
      const objects = await objectsUnder(s3.prefix)
      assert.strictEqual(objects.length, stats.entries, objects.join("\n"))
      assert.isUndefined(await cache.get({ e: 0 }), "the first put was evicted")

      const mark = server.requests.length
      assert.strictEqual(await cache.clear(), stats.entries)
      assert.deepStrictEqual(await objectsUnder(s3.prefix), [])
      // The objects of many entries go in one DeleteObjects, not one request (or two) each.
      const sent = server.requests.slice(mark)
      assert.strictEqual(sent.filter((r) => r.startsWith("DELETE")).length, 0, sent.join("\n"))
      assert.isAtLeast(sent.filter((r) => r.startsWith("POST") && r.includes("delete")).length, 1)
    } finally {
      await cache.close()
    }
  })

  it("a damaged object is a miss, never a wrong value, and its entry and object are removed", async () => {
    const { cache, s3 } = open()
    const client = raw()
    try {
      const value = noise(150_000, 5)
      await cache.put({ k: "damaged" }, value)
      const [name] = await objectsUnder(s3.prefix)
      const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: name }))
      const bytes = await object.Body!.transformToByteArray()
      bytes[bytes.length >> 1] ^= 0xff // same length, one byte flipped
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: name, Body: bytes }))

      assert.isUndefined(await cache.get({ k: "damaged" }))
      assert.isFalse(await cache.has({ k: "damaged" }))
      assert.deepStrictEqual(await cache.list(), [])
      assert.deepStrictEqual(await objectsUnder(s3.prefix), [], "the damaged object went with its entry")

      // A missing object likewise: a miss, the entry removed.
      await cache.put({ k: "missing" }, value)
      const [gone] = await objectsUnder(s3.prefix)
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: gone }))
      assert.isUndefined(await cache.get({ k: "missing" }))
      assert.deepStrictEqual(await cache.list(), [])
      // The cache keeps working: the key is written again and reads back.
      await cache.put({ k: "missing" }, value)
      assert.isTrue(same(await cache.get<Uint8Array>({ k: "missing" }), value))
    } finally {
      client.destroy()
      await cache.close()
    }
  })

  it("a server that goes away mid-put leaves no row pointing at a missing object", async () => {
    const first = await startS3({ keepDirectory: true })
    const prefix = `gone${++prefixes}/`
    const dir = directory()
    let parts = 0
    first.onRequest((request) => {
      // The second part of a 20 MiB multipart upload (16 MiB parts): the object is never completed.
      if (request.url?.includes("partNumber=") === true && ++parts === 2) void first.kill()
    })
    const cache = cacheness({
      directory: dir,
      blobs: "s3",
      s3: s3Options(first.endpoint, prefix),
      maxSize: null,
      defaultTtl: null
    })
    let again: S3Server | undefined
    try {
      await cache.put({ k: "kept" }, noise(50_000, 6))
      const error = await rejection(cache.put({ k: "big" }, noise(20 * MiB, 7)))
      assert.instanceOf(error, StorageError)
      assert.strictEqual((error as StorageError).reason, "WriteFailed")
      assert.isAtLeast(parts, 2, "the put died in the middle of its upload")
      // The row is the commit point and was never written: the entry before it is all there is.
      assert.deepStrictEqual((await cache.list()).map((e) => e.params), [{ k: "kept" }])
      await cache.close()

      // The server comes back on its directory (another port): no trace of the failed put.
      again = await startS3({ directory: first.directory })
      const reopened = cacheness({
        directory: dir,
        blobs: "s3",
        s3: s3Options(again.endpoint, prefix),
        maxSize: null,
        defaultTtl: null
      })
      try {
        assert.isUndefined(await reopened.get({ k: "big" }))
        assert.strictEqual((await reopened.get<Uint8Array>({ k: "kept" }))?.byteLength, 50_000)
        const report = await reopened.verify()
        assert.deepStrictEqual(report.dangling, [])
        assert.strictEqual(report.checked, 1)
        assert.strictEqual((await objectsUnder(prefix, again.endpoint)).length, 1)
      } finally {
        await reopened.close()
      }
    } finally {
      await cache.close()
      await first.stop()
      await again?.stop()
      fs.rmSync(first.directory, { recursive: true, force: true })
    }
  }, 60_000)

  it("verify lists the prefix for orphans older than an hour (by the server's clock) and repair removes them", async () => {
    const { cache, s3 } = open()
    const client = raw()
    try {
      await cache.put({ k: "live" }, noise(60_000, 8))
      const orphan = `${s3.prefix}0123456789abcdef-orphan`
      const young = `${s3.prefix}fedcba9876543210-young`
      const foreign = `${s3.prefix}README`
      for (const key of [orphan, young, foreign]) {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "x" }))
      }
      backdate(orphan, 2 * 60 * 60 * 1000)
      backdate(foreign, 2 * 60 * 60 * 1000)
      // And a dangling entry: its object deleted behind the cache's back.
      await cache.put({ k: "dangling" }, noise(60_000, 9))
      const danglingKey = await cache.key({ k: "dangling" })
      const dangling = (await objectsUnder(s3.prefix)).find((key) => key.startsWith(`${s3.prefix}${danglingKey}-`))!
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: dangling }))

      const report = await cache.verify()
      // A young object without a row may be a put in flight; a name that is no blob id is not ours.
      assert.deepStrictEqual(report.orphans, ["0123456789abcdef-orphan"])
      assert.deepStrictEqual(report.dangling, [danglingKey])
      assert.strictEqual(report.repaired, 0)
      assert.strictEqual((await objectsUnder(s3.prefix)).length, 5 - 1, "verify alone changes nothing")

      const repaired = await cache.verify({ repair: true })
      assert.strictEqual(repaired.repaired, 2)
      const left = await objectsUnder(s3.prefix)
      const liveKey = await cache.key({ k: "live" })
      assert.deepStrictEqual(left.filter((key) => !key.startsWith(`${s3.prefix}${liveKey}-`)), [
        foreign,
        young
      ])
      assert.deepStrictEqual((await cache.list()).map((e) => e.params), [{ k: "live" }])
      assert.deepStrictEqual((await cache.verify()).orphans, [])
    } finally {
      client.destroy()
      await cache.close()
    }
  })

  it(
    "throttled and 5xx answers are retried; a lasting failure is a StorageError with a reason and stores nothing",
    async () => {
      // Every other request answers 503 SlowDown: each call succeeds on its retry.
      const flaky = await startFaultyProxy(server.endpoint, (_, seen) => seen % 2 === 1)
      const { cache } = open({}, s3Options(flaky.endpoint))
      try {
        const value = noise(80_000, 11)
        await cache.put({ k: "flaky" }, value)
        assert.isTrue(same(await cache.get<Uint8Array>({ k: "flaky" }), value))
        assert.isTrue(await cache.invalidate({ k: "flaky" }))
        assert.isAtLeast(flaky.failed(), 3)
      } finally {
        await cache.close()
        await flaky.stop()
      }

      // PUTs always 500 (GETs pass, so the cache opens): the put fails after its retries.
      const broken = await startFaultyProxy(server.endpoint, (request) => request.method === "PUT", {
        status: 500,
        code: "InternalError"
      })
      const { cache: failing, s3 } = open({}, s3Options(broken.endpoint))
      try {
        const error = await rejection(failing.put({ k: "never" }, noise(80_000, 12)))
        assert.instanceOf(error, StorageError)
        assert.strictEqual((error as StorageError).reason, "WriteFailed")
        assert.match((error as StorageError).message, /InternalError|500/)
        assert.strictEqual(broken.failed(), 5, "one try and four retries")
        assert.deepStrictEqual(await failing.list(), [])
        assert.deepStrictEqual(await objectsUnder(s3.prefix), [])
      } finally {
        await failing.close()
        await broken.stop()
      }
    },
    60_000
  )
})

describe("S3 configuration", () => {
  const fails = async (config: CachenessOptions, field: string) => {
    const cache = cacheness(config)
    try {
      const error = await rejection(cache.stats())
      assert.instanceOf(error, ConfigError, field)
      assert.strictEqual((error as ConfigError).field, field, (error as ConfigError).message)
      return error as ConfigError
    } finally {
      await cache.close()
    }
  }

  it("bad s3 settings are ConfigErrors naming the field, and nothing is created", async () => {
    const dir = path.join(directory(), "never")
    const base = { directory: dir, blobs: "s3" } as const
    await fails(base, "s3.bucket")
    await fails({ ...base, s3: { ...s3Options(), bucekt: "x" } } as unknown as CachenessOptions, "s3.bucekt")
    await fails({ ...base, s3: { ...s3Options(), bucket: "" } }, "s3.bucket")
    await fails({ ...base, s3: { ...s3Options(), endpoint: "not a url" } }, "s3.endpoint")
    await fails(
      { ...base, s3: { ...s3Options(), forcePathStyle: "yes" } } as unknown as CachenessOptions,
      "s3.forcePathStyle"
    )
    await fails(
      { ...base, s3: { ...s3Options(), credentials: { accessKeyId: "a" } } } as unknown as CachenessOptions,
      "s3.credentials.secretAccessKey"
    )
    await fails({ ...base, s3: { ...s3Options(), multipartThreshold: "1 MiB" } }, "s3.multipartThreshold")
    await fails({ ...base, s3: { ...s3Options(), multipartThreshold: "lots" } }, "s3.multipartThreshold")
    const mismatch = await fails({ directory: dir, blobs: "filesystem", s3: s3Options() }, "s3")
    assert.match(mismatch.message, /blobs is "filesystem"/)
    assert.isFalse(fs.existsSync(dir))
  })

  it("s3 alone selects S3 blobs; credentials may be Redacted; the Effect layer takes the same config", async () => {
    const s3 = s3Options()
    const cache = cacheness({
      directory: directory(),
      s3: {
        ...s3,
        credentials: {
          accessKeyId: Redacted.make(credentials.accessKeyId),
          secretAccessKey: Redacted.make(credentials.secretAccessKey)
        }
      }
    })
    try {
      await cache.put({ k: 1 }, noise(40_000, 13))
      assert.strictEqual((await objectsUnder(s3.prefix)).length, 1)
      assert.strictEqual((await cache.stats()).entries, 1)
    } finally {
      await cache.close()
    }
    // Wrong credentials: the layer fails when built, as a StorageError with its reason.
    const denied = cacheness({
      directory: directory(),
      s3: { ...s3Options(), credentials: { accessKeyId: "nobody", secretAccessKey: "wrong" } }
    })
    try {
      const error = await rejection(denied.stats())
      assert.instanceOf(error, StorageError)
      assert.strictEqual((error as StorageError).reason, "PermissionDenied")
    } finally {
      await denied.close()
    }
  })

  it.live("layerConfig reads the CACHENESS_S3_* variables (secrets Redacted); a lone key id is a ConfigError", () =>
    Effect.gen(function*() {
      const prefix = `env${++prefixes}/`
      const env = new Map([
        ["CACHENESS_DIR", directory()],
        ["CACHENESS_S3_BUCKET", bucket],
        ["CACHENESS_S3_PREFIX", prefix],
        ["CACHENESS_S3_ENDPOINT", server.endpoint],
        ["CACHENESS_S3_REGION", "eu-west-1"],
        ["CACHENESS_S3_FORCE_PATH_STYLE", "true"],
        ["CACHENESS_S3_ACCESS_KEY_ID", credentials.accessKeyId],
        ["CACHENESS_S3_SECRET_ACCESS_KEY", credentials.secretAccessKey]
      ])
      const withEnv = <A, E>(vars: Map<string, string>, effect: Effect.Effect<A, E, Cache.Cache>) =>
        effect.pipe(
          Effect.provide(layerConfig({ maxSize: null })),
          Effect.withConfigProvider(ConfigProvider.fromMap(vars))
        )
      const key = yield* withEnv(
        env,
        Effect.flatMap(Cache.Cache, (cache) =>
          Effect.gen(function*() {
            const key = yield* cache.put({ k: "env" }, noise(40_000, 14))
            assert.isTrue(Option.isSome(yield* cache.get({ k: "env" })))
            return key
          }))
      )
      const objects = yield* Effect.promise(() => objectsUnder(prefix))
      assert.strictEqual(objects.length, 1)
      assert.isTrue(objects[0].startsWith(`${prefix}${key}-`))

      const lone = new Map([...env].filter(([name]) => name !== "CACHENESS_S3_SECRET_ACCESS_KEY"))
      const error = yield* Effect.flip(withEnv(lone, Cache.Cache))
      assert.instanceOf(error, ConfigError)
      assert.strictEqual((error as ConfigError).field, "environment")
      assert.match(error.message, /CACHENESS_S3_SECRET_ACCESS_KEY/)
      const bad = new Map([...env, ["CACHENESS_S3_FORCE_PATH_STYLE", "sometimes"]])
      const badError = yield* Effect.flip(withEnv(bad, Cache.Cache))
      assert.instanceOf(badError, ConfigError)
      assert.match(badError.message, /CACHENESS_S3_FORCE_PATH_STYLE/)
    }))

  it("cacheness() falls back to the CACHENESS_S3_* variables when s3 is not given", async () => {
    const prefix = `penv${++prefixes}/`
    const vars: Record<string, string> = {
      CACHENESS_S3_BUCKET: bucket,
      CACHENESS_S3_PREFIX: prefix,
      CACHENESS_S3_ENDPOINT: server.endpoint,
      CACHENESS_S3_FORCE_PATH_STYLE: "true",
      CACHENESS_S3_ACCESS_KEY_ID: credentials.accessKeyId,
      CACHENESS_S3_SECRET_ACCESS_KEY: credentials.secretAccessKey
    }
    Object.assign(process.env, vars)
    const cache = cacheness({ directory: directory(), maxSize: null })
    // A field given in the config wins over its variable; the others still come from the environment.
    const given = `given${++prefixes}/`
    const mixed = cacheness({ directory: directory(), maxSize: null, s3: { bucket, prefix: given } })
    try {
      await cache.put({ k: "penv" }, noise(40_000, 15))
      assert.strictEqual((await objectsUnder(prefix)).length, 1)
      await mixed.put({ k: "mixed" }, noise(40_000, 17))
      assert.strictEqual((await objectsUnder(given)).length, 1)
      assert.strictEqual((await objectsUnder(prefix)).length, 1)
    } finally {
      await cache.close()
      await mixed.close()
      for (const name of Object.keys(vars)) delete process.env[name]
    }
  })

  it.effect("Layer composition: Cache.layer({ blobs: \"s3\" }) is a Layer like any other", () =>
    Effect.gen(function*() {
      const s3 = s3Options()
      const layer = Cache.layer({ directory: directory(), blobs: "s3", s3 })
      const result = yield* Effect.either(
        Effect.flatMap(Cache.Cache, (cache) => cache.put({ k: "layer" }, noise(30_000, 16))).pipe(
          Effect.provide(Layer.fresh(layer))
        )
      )
      assert.isTrue(Either.isRight(result))
      assert.strictEqual((yield* Effect.promise(() => objectsUnder(s3.prefix))).length, 1)
    }))
})
