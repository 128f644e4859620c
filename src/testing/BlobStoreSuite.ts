/**
 * The contract every `BlobStore` backend passes. Each test builds `layer` afresh (an empty store).
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { BlobStore, StorageError } from "../blob/service.js"

const id = (n: number, version = "v1") => `${n.toString(16).padStart(16, "0")}-${version}`

const bytesOf = (length: number, seed = 1) => {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7) & 0xff
  return out
}

const getSome = (store: BlobStore.Service, blobId: string) =>
  Effect.flatMap(store.get(blobId), (found) =>
    Option.match(found, {
      onNone: () => Effect.dieMessage(`expected a blob under ${blobId}`),
      onSome: Effect.succeed
    }))

/**
 * Runs the BlobStore contract against the store `layer` builds, a fresh one per test.
 *
 * @since 0.1.0
 * @category suites
 */
export const blobStoreSuite = (name: string, layer: Layer.Layer<BlobStore, unknown>): void => {
  describe(`BlobStore contract: ${name}`, () => {
    const withStore = <A, E>(f: (store: BlobStore.Service) => Effect.Effect<A, E>) =>
      Effect.flatMap(BlobStore, f).pipe(Effect.provide(layer))

    for (const [label, length] of [["empty", 0], ["1 byte", 1], ["1 MiB", 1024 * 1024]] as const) {
      it.effect(`put/get round trip: ${label}`, () =>
        withStore((store) =>
          Effect.gen(function*() {
            const bytes = bytesOf(length)
            yield* store.put(id(1), bytes)
            const got = yield* getSome(store, id(1))
            assert.strictEqual(got.byteLength, length)
            assert.deepStrictEqual(new Uint8Array(got), bytes)
          })
        ))
    }

    it.effect("overwrite replaces the bytes", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* store.put(id(2), bytesOf(100, 1))
          yield* store.put(id(2), bytesOf(10, 2))
          assert.deepStrictEqual(new Uint8Array(yield* getSome(store, id(2))), bytesOf(10, 2))
          assert.deepStrictEqual(yield* store.list, [id(2)])
        })
      ))

    it.effect("get of a missing id is none", () =>
      withStore((store) =>
        Effect.gen(function*() {
          assert.isTrue(Option.isNone(yield* store.get(id(3))))
        })
      ))

    it.effect("delete is true once, then false", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* store.put(id(4), bytesOf(5))
          assert.isTrue(yield* store.delete(id(4)))
          assert.isFalse(yield* store.delete(id(4)))
          assert.isTrue(Option.isNone(yield* store.get(id(4))))
        })
      ))

    it.effect("has", () =>
      withStore((store) =>
        Effect.gen(function*() {
          assert.isFalse(yield* store.has(id(5)))
          yield* store.put(id(5), bytesOf(5))
          assert.isTrue(yield* store.has(id(5)))
          yield* store.delete(id(5))
          assert.isFalse(yield* store.has(id(5)))
        })
      ))

    it.effect("list returns every stored id", () =>
      withStore((store) =>
        Effect.gen(function*() {
          assert.deepStrictEqual(yield* store.list, [])
          const ids = [id(0xabcd0001), id(0xabcd0002), id(0x1234, "zz9"), id(0xffffffff, "0")]
          yield* Effect.forEach(ids, (blobId) => store.put(blobId, bytesOf(3)))
          assert.deepStrictEqual([...(yield* store.list)].sort(), [...ids].sort())
        })
      ))

    it.effect("clear removes everything and counts the blobs", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* Effect.forEach([1, 2, 3], (n) => store.put(id(n), bytesOf(n)))
          assert.strictEqual(yield* store.clear, 3)
          assert.deepStrictEqual(yield* store.list, [])
          assert.isTrue(Option.isNone(yield* store.get(id(1))))
          assert.strictEqual(yield* store.clear, 0)
          // The store stays usable after a clear.
          yield* store.put(id(1), bytesOf(4))
          assert.deepStrictEqual(new Uint8Array(yield* getSome(store, id(1))), bytesOf(4))
        })
      ))

    it.effect("an invalid id is a StorageError and writes nothing", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const invalid = [
            "",
            "abc",
            "../../etc/passwd",
            "0123456789abcdef",
            "0123456789abcdef-",
            "0123456789ABCDEF-v1",
            "0123456789abcdef-V1",
            "0123456789abcdef-v1/x",
            "0123456789abcdef-v1.tmp",
            ".0123456789abcdef-v1",
            `0123456789abcdef-${"a".repeat(65)}`
          ]
          for (const bad of invalid) {
            for (const attempt of [store.put(bad, bytesOf(3)), store.get(bad), store.delete(bad), store.has(bad)]) {
              const result = yield* Effect.either(attempt as Effect.Effect<unknown, StorageError>)
              assert.isTrue(Either.isLeft(result), `accepted ${JSON.stringify(bad)}`)
              if (Either.isLeft(result)) {
                assert.instanceOf(result.left, StorageError)
                assert.strictEqual(result.left.reason, "InvalidId")
              }
            }
          }
          assert.deepStrictEqual(yield* store.list, [])
        })
      ))

    it.effect("mutating the input after put, or the output of get, does not change the stored blob", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const bytes = bytesOf(64)
          yield* store.put(id(6), bytes)
          bytes.fill(0)
          const first = yield* getSome(store, id(6))
          assert.deepStrictEqual(new Uint8Array(first), bytesOf(64))
          first.fill(9)
          assert.deepStrictEqual(new Uint8Array(yield* getSome(store, id(6))), bytesOf(64))
        })
      ))

    it.effect("200 concurrent puts of distinct ids are all readable", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const ids = Array.from({ length: 200 }, (_, n) => id(n * 0x9e3779b1, `c${n.toString(36)}`))
          yield* Effect.forEach(ids, (blobId, n) => store.put(blobId, bytesOf(1000 + n, n)), {
            concurrency: "unbounded"
          })
          yield* Effect.forEach(ids, (blobId, n) =>
            Effect.map(getSome(store, blobId), (got) => {
              assert.deepStrictEqual(new Uint8Array(got), bytesOf(1000 + n, n))
            }))
          assert.strictEqual((yield* store.list).length, 200)
        })
      ))

    it.effect("deleteMany removes the listed blobs that exist and keeps the others", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* Effect.forEach([1, 2, 3], (n) => store.put(id(0x7000 + n), bytesOf(n)))
          yield* store.deleteMany([])
          yield* store.deleteMany([id(0x7001), id(0x7003), id(0x7999)])
          assert.deepStrictEqual(yield* store.list, [id(0x7002)])
          assert.isTrue(Option.isNone(yield* store.get(id(0x7001))))
          assert.deepStrictEqual(new Uint8Array(yield* getSome(store, id(0x7002))), bytesOf(2))
          const bad = yield* Effect.either(store.deleteMany([id(0x7002), "../escape"]))
          assert.isTrue(Either.isLeft(bad) && bad.left instanceof StorageError && bad.left.reason === "InvalidId")
        })
      ))

    it.effect("describes itself", () =>
      withStore((store) =>
        Effect.sync(() => {
          assert.isString(store.backend)
          assert.isTrue(store.location === null || typeof store.location === "string")
        })
      ))
  })
}
