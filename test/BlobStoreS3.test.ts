// The S3 blob store against a local S3-compatible server (s3rver, in this process).
import { ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as BlobStoreS3 from "../src/blob/s3.js"
import { StorageError } from "../src/blob/service.js"
import * as BlobStore from "../src/BlobStore.js"
import { ConfigError } from "../src/errors.js"
import { blobStoreSuite } from "../src/testing.js"
import { bucket, credentials, type S3Server, startFaultyProxy, startS3 } from "./support/s3.js"

const MiB = 1024 * 1024

let server: S3Server
beforeAll(async () => {
  server = await startS3()
})
afterAll(async () => {
  await server?.stop()
})

let suites = 0
/** Each store under a fresh prefix of the one bucket, so every test starts empty. */
const options = (extra: Partial<BlobStoreS3.Options> = {}, on: S3Server = server): BlobStoreS3.Options => ({
  bucket,
  prefix: `t${++suites}/`,
  endpoint: on.endpoint,
  region: "us-east-1",
  forcePathStyle: true,
  credentials: { ...credentials },
  ...extra
})

const raw = (on: S3Server = server) =>
  new S3Client({ endpoint: on.endpoint, region: "us-east-1", forcePathStyle: true, credentials: { ...credentials } })

const keysUnder = async (prefix: string, on: S3Server = server) => {
  const client = raw(on)
  try {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))
    return (page.Contents ?? []).map((object) => object.Key!).sort()
  } finally {
    client.destroy()
  }
}

const id = (n: number, version = "v1") => `${n.toString(16).padStart(16, "0")}-${version}`

const bytesOf = (length: number, seed = 1) => {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7 + (i >> 12)) & 0xff
  return out
}

const withStore = <A, E>(opts: BlobStoreS3.Options, f: (store: BlobStore.Service) => Effect.Effect<A, E>) =>
  Effect.flatMap(BlobStore.BlobStore, f).pipe(Effect.provide(BlobStoreS3.layer(opts)))

blobStoreSuite("s3", Layer.suspend(() => BlobStoreS3.layer(options())))
blobStoreSuite("s3 through BlobStore.layerS3", Layer.suspend(() => BlobStore.layerS3(options())))

describe("BlobStoreS3", () => {
  it.effect("a missing object is none; has is false; delete is false", () => {
    const opts = options()
    return withStore(opts, (store) =>
      Effect.gen(function*() {
        assert.isTrue(Option.isNone(yield* store.get(id(1))))
        assert.isFalse(yield* store.has(id(1)))
        assert.isFalse(yield* store.delete(id(1)))
      }))
  })

  it.effect("objects live under the prefix as prefix + id; other objects there are not blobs", () => {
    const opts = options({ prefix: "team/cache/" })
    return withStore(opts, (store) =>
      Effect.gen(function*() {
        yield* store.clear
        yield* store.put(id(1), bytesOf(10))
        yield* store.put(id(2), bytesOf(20))
        assert.deepStrictEqual(yield* Effect.promise(() => keysUnder("team/")), [
          `team/cache/${id(1)}`,
          `team/cache/${id(2)}`
        ])
        // An object of someone else's beside ours, and one outside the prefix.
        yield* Effect.promise(async () => {
          const client = raw()
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: "team/cache/README", Body: "hello" }))
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: `team/other/${id(3)}`, Body: "x" }))
          client.destroy()
        })
        assert.deepStrictEqual([...(yield* store.list)].sort(), [id(1), id(2)])
        assert.strictEqual(yield* store.clear, 2)
        assert.deepStrictEqual(yield* Effect.promise(() => keysUnder("team/")), [
          "team/cache/README",
          `team/other/${id(3)}`
        ])
      }))
  })

  it.effect("list pages past 1000 keys; clear deletes in DeleteObjects batches of at most 1000", () => {
    const opts = options({ concurrency: 8 })
    return withStore(opts, (store) =>
      Effect.gen(function*() {
        const ids = Array.from({ length: 1001 }, (_, i) => id(i + 1))
        yield* Effect.forEach(ids, (blobId) => store.put(blobId, bytesOf(1)), { concurrency: 32, discard: true })
        const mark = server.requests.length
        assert.deepStrictEqual([...(yield* store.list)].sort(), ids)
        assert.strictEqual(server.requests.slice(mark).filter((r) => r.includes("list-type=2")).length, 2)
        const before = server.requests.length
        assert.strictEqual(yield* store.clear, 1001)
        const sent = server.requests.slice(before)
        assert.strictEqual(sent.filter((r) => r.startsWith("POST") && r.includes("delete")).length, 2)
        assert.isFalse(sent.some((r) => r.startsWith("DELETE")))
        assert.deepStrictEqual(yield* store.list, [])
      }))
  }, 300_000)

  it.effect("values at or above the threshold go up as a multipart upload; smaller ones as one PutObject", () => {
    const opts = options({ multipartThreshold: 5 * MiB, concurrency: 2 })
    return withStore(opts, (store) =>
      Effect.gen(function*() {
        const big = bytesOf(12 * MiB + 3, 5)
        const before = server.requests.length
        yield* store.put(id(1), big)
        const sent = server.requests.slice(before)
        assert.isTrue(sent.some((r) => r.startsWith("POST") && r.includes("?uploads")), sent.join("\n"))
        assert.strictEqual(sent.filter((r) => r.startsWith("PUT") && r.includes("partNumber=")).length, 3)
        const got = yield* store.get(id(1))
        assert.isTrue(Option.isSome(got))
        assert.strictEqual(Option.getOrThrow(got).byteLength, big.byteLength)
        assert.isTrue(Buffer.from(Option.getOrThrow(got)).equals(Buffer.from(big)))

        const small = bytesOf(5 * MiB - 1, 6)
        const mark = server.requests.length
        yield* store.put(id(2), small)
        const plain = server.requests.slice(mark)
        assert.isFalse(plain.some((r) => r.includes("uploads") || r.includes("uploadId")), plain.join("\n"))
        assert.isTrue(Buffer.from(Option.getOrThrow(yield* store.get(id(2)))).equals(Buffer.from(small)))
        assert.deepStrictEqual([...(yield* store.list)].sort(), [id(1), id(2)])
      }))
  }, 60_000)

  it.live(
    "a server that goes away mid-put fails the put with a StorageError and leaves no object",
    () =>
      Effect.gen(function*() {
        const first = yield* Effect.promise(() => startS3({ keepDirectory: true }))
        let parts = 0
        first.onRequest((request) => {
          // The second part of the upload: the first is stored, the object is not complete.
          if (request.url?.includes("partNumber=") === true && ++parts === 2) void first.kill()
        })
        const opts = options({ multipartThreshold: 5 * MiB, concurrency: 1 }, first)
        const result = yield* withStore(opts, (store) => Effect.either(store.put(id(1), bytesOf(16 * MiB))))
        yield* Effect.promise(() => first.stop())
        assert.isTrue(Either.isLeft(result))
        const error = (result as Either.Left<StorageError, void>).left
        assert.instanceOf(error, StorageError)
        assert.strictEqual(error.reason, "WriteFailed")
        assert.strictEqual(error.method, "BlobStore.put")

        // The server comes back on the same directory: no object, whole or partial.
        const again = yield* Effect.promise(() => startS3({ directory: first.directory }))
        try {
          const seen = yield* withStore(
            { ...opts, endpoint: again.endpoint },
            (store) => Effect.all({ got: store.get(id(1)), list: store.list })
          )
          assert.isTrue(Option.isNone(seen.got))
          assert.deepStrictEqual(seen.list, [])
          assert.deepStrictEqual(yield* Effect.promise(() => keysUnder(opts.prefix!, again)), [])
        } finally {
          yield* Effect.promise(() => again.stop())
        }
      }),
    60_000
  )

  it.live(
    "throttling (503 SlowDown, 429) and 500s are retried; a lasting 500 fails with a StorageError",
    () =>
      Effect.gen(function*() {
        const opts = options()
        // Every other request of each kind fails once: 503 SlowDown, then 429, then 500.
        for (
          const error of [{ status: 503, code: "SlowDown" }, { status: 429, code: "TooManyRequests" }, {
            status: 500,
            code: "InternalError"
          }]
        ) {
          const proxy = yield* Effect.promise(() =>
            startFaultyProxy(server.endpoint, (_, seen) => seen % 2 === 1, error)
          )
          try {
            yield* withStore({ ...opts, endpoint: proxy.endpoint }, (store) =>
              Effect.gen(function*() {
                yield* store.put(id(1), bytesOf(100))
                assert.isTrue(yield* store.has(id(1)))
                assert.deepStrictEqual(new Uint8Array(Option.getOrThrow(yield* store.get(id(1)))), bytesOf(100))
                assert.deepStrictEqual(yield* store.list, [id(1)])
                assert.strictEqual(yield* store.clear, 1)
              }))
            assert.isAtLeast(proxy.failed(), 5, error.code)
          } finally {
            yield* Effect.promise(() => proxy.stop())
          }
        }
        // A server that always fails: retried a bounded number of times, then a StorageError.
        const broken = yield* Effect.promise(() =>
          startFaultyProxy(server.endpoint, (request) => request.method === "GET", {
            status: 500,
            code: "InternalError"
          })
        )
        try {
          const result = yield* withStore(
            { ...opts, endpoint: broken.endpoint },
            (store) => Effect.either(store.get(id(2)))
          )
          assert.isTrue(Either.isLeft(result))
          const error = (result as Either.Left<StorageError, unknown>).left
          assert.strictEqual(error.reason, "ReadFailed")
          assert.strictEqual(broken.failed(), 5)
        } finally {
          yield* Effect.promise(() => broken.stop())
        }
      }),
    60_000
  )

  it.effect("wrong credentials are PermissionDenied when the layer is built", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(
        withStore(options({ credentials: { accessKeyId: "nobody", secretAccessKey: "wrong" } }), () => Effect.void)
      )
      assert.isTrue(Either.isLeft(result))
      const error = (result as Either.Left<unknown, void>).left
      assert.instanceOf(error, StorageError)
      assert.strictEqual((error as StorageError).reason, "PermissionDenied")
    }))

  it.effect("a bucket that does not exist fails the layer", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(withStore(options({ bucket: "no-such-bucket" }), () => Effect.void))
      assert.isTrue(Either.isLeft(result))
      assert.instanceOf((result as Either.Left<unknown, void>).left, StorageError)
    }))

  it.effect("invalid ids are InvalidId, as in every store", () =>
    withStore(options(), (store) =>
      Effect.gen(function*() {
        const result = yield* Effect.either(store.put("../escape", bytesOf(1)))
        assert.isTrue(Either.isLeft(result))
        assert.strictEqual((result as Either.Left<StorageError, void>).left.reason, "InvalidId")
      })))

  it.effect("options are checked: unknown fields, a missing bucket, a threshold below 5 MiB are ConfigErrors", () =>
    Effect.gen(function*() {
      const fails = (input: unknown, field: string) =>
        Effect.gen(function*() {
          const result = yield* Effect.either(withStore(input as BlobStoreS3.Options, () => Effect.void))
          assert.isTrue(Either.isLeft(result), field)
          const error = (result as Either.Left<unknown, void>).left
          assert.instanceOf(error, ConfigError, field)
          assert.strictEqual((error as ConfigError).field, field)
        })
      yield* fails({ ...options(), bucekt: "x" }, "s3.bucekt")
      yield* fails({ ...options(), bucket: undefined }, "s3.bucket")
      yield* fails({ ...options(), multipartThreshold: 1024 }, "s3.multipartThreshold")
      yield* fails({ ...options(), concurrency: 0 }, "s3.concurrency")
      yield* fails({ ...options(), endpoint: "not a url" }, "s3.endpoint")
      yield* fails({ ...options(), credentials: { accessKeyId: "a" } }, "s3.credentials.secretAccessKey")
      yield* fails("bucket", "s3")
    }))

  it.effect("without the SDK installed the layer fails with a ConfigError naming the packages", () =>
    Effect.gen(function*() {
      BlobStoreS3.unsafeSetSpecifiers({ client: "@aws-sdk/client-s3-missing", storage: "@aws-sdk/lib-storage" })
      const result = yield* Effect.either(withStore(options(), () => Effect.void)).pipe(
        Effect.ensuring(
          Effect.sync(() =>
            BlobStoreS3.unsafeSetSpecifiers({ client: "@aws-sdk/client-s3", storage: "@aws-sdk/lib-storage" })
          )
        )
      )
      assert.isTrue(Either.isLeft(result))
      const error = (result as Either.Left<unknown, void>).left
      assert.instanceOf(error, ConfigError)
      assert.strictEqual((error as ConfigError).reason, "Unsupported")
      assert.match((error as ConfigError).description, /@aws-sdk\/client-s3@\^3\.\d+\.\d+ @aws-sdk\/lib-storage/)
    }))
})
