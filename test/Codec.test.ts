import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as fc from "fast-check"
import * as Crypto from "node:crypto"
import { inspect } from "node:util"
import * as Zlib from "node:zlib"
import * as Compression from "../src/codec/compression.js"
import * as Header from "../src/codec/header.js"
import * as CodecDefault from "../src/codec/registry.js"
import { CodecError } from "../src/codec/service.js"
import type { Codec, FormatHandler } from "../src/codec/service.js"
import { sameValue } from "./support/sameValue.js"

const codec = CodecDefault.make()

const roundTrip = (value: unknown, service: Codec.Service = codec) =>
  Effect.flatMap(service.encode(value), (encoded) => service.decode(encoded.bytes))

const failure = <A>(effect: Effect.Effect<A, CodecError>) =>
  Effect.map(Effect.either(effect), (result) => {
    assert.isTrue(Either.isLeft(result), "expected a CodecError")
    const error = (result as Either.Left<CodecError, A>).left
    assert.instanceOf(error, CodecError)
    return error
  })

const record = {
  id: 12345,
  name: "customer_data_model_v1",
  tags: ["alpha", "beta", "gamma", "delta"],
  score: 0.987654321,
  meta: { region: "eu-west-1", active: true }
}

describe("CodecDefault", () => {
  describe("round trips", () => {
    const cases: ReadonlyArray<readonly [string, unknown]> = [
      ["null", null],
      ["undefined", undefined],
      ["a string", "héllo wörld ✓ \u{1F600}"],
      ["an empty string", ""],
      ["a lone surrogate", "\ud800x"],
      ["numbers", [0, -0, 1.5, NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER]],
      ["booleans", [true, false]],
      ["a bigint", 2n ** 100n],
      ["a nested object", { a: { b: { c: [1, { d: "e" }] } }, f: null }],
      ["an object with undefined fields", { a: undefined, b: 1 }],
      ["a sparse array", [1, , 3]], // eslint-disable-line no-sparse-arrays
      ["a Date", new Date("2024-01-02T03:04:05.678Z")],
      ["a Map", new Map<unknown, unknown>([["a", 1], [2, { b: 3 }]])],
      ["a Set", new Set([1, "two", 3n])],
      ["a RegExp", /ab+c/gi],
      ["typed arrays", { f: new Float64Array([1.5, -2]), i: new Int32Array([1, -1]) }],
      ["an object holding a Buffer", { b: Buffer.from("hi") }],
      ["a 150 B record", record],
      ["a __proto__ key", JSON.parse(`{"__proto__": {"polluted": true}, "a": 1}`)]
    ]
    for (const [name, value] of cases) {
      it.effect(name, () =>
        Effect.gen(function*() {
          assert.deepStrictEqual(yield* roundTrip(value), value)
        }))
    }

    it.effect("a null-prototype object comes back as a plain object (structured clone)", () =>
      Effect.gen(function*() {
        const back = yield* roundTrip(Object.assign(Object.create(null), { a: 1, b: [2] }))
        assert.strictEqual(Object.getPrototypeOf(back), Object.prototype)
        assert.deepStrictEqual(back, { a: 1, b: [2] })
      }))

    it.effect("cycles", () =>
      Effect.gen(function*() {
        const value: { self?: unknown; list: Array<unknown> } = { list: [] }
        value.self = value
        value.list.push(value.list)
        const back = (yield* roundTrip(value)) as typeof value
        assert.strictEqual(back.self, back)
        assert.strictEqual(back.list[0], back.list)
      }))

    it.effect("Uint8Array comes back as a Uint8Array, Buffer as a Buffer", () =>
      Effect.gen(function*() {
        const bytes = new Uint8Array([1, 2, 3])
        const fromBytes = yield* roundTrip(bytes)
        assert.deepStrictEqual(fromBytes, bytes)
        assert.isFalse(Buffer.isBuffer(fromBytes))
        assert.strictEqual((yield* codec.encode(bytes)).format, "bytes")

        const buffer = Buffer.from("hello")
        const fromBuffer = yield* roundTrip(buffer)
        assert.isTrue(Buffer.isBuffer(fromBuffer))
        assert.strictEqual((fromBuffer as Buffer).toString("utf8"), "hello")
        assert.strictEqual((yield* codec.encode(buffer)).format, "buffer")

        assert.deepStrictEqual(yield* roundTrip(new Uint8Array(0)), new Uint8Array(0))
      }))

    it.effect("plain JSON data uses the json format, everything else v8", () =>
      Effect.gen(function*() {
        const formats = yield* Effect.forEach(
          [record, "s", 1, null, [1, "a"], { a: undefined }, -0, NaN, new Date(0), new Map(), 1n, [1, , 2]], // eslint-disable-line no-sparse-arrays
          (value) => Effect.map(codec.encode(value), (encoded) => encoded.format)
        )
        assert.deepStrictEqual(formats, [
          "json",
          "json",
          "json",
          "json",
          "json",
          "v8",
          "v8",
          "v8",
          "v8",
          "v8",
          "v8",
          "v8"
        ])
      }))

    it("any JSON value (property)", () => {
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          assert.deepStrictEqual(Effect.runSync(roundTrip(value)), value)
        }),
        { numRuns: 500 }
      )
    })

    it("anything structured clone keeps (property)", () => {
      fc.assert(
        fc.property(
          fc.anything({
            withBigInt: true,
            withDate: true,
            withMap: true,
            withSet: true,
            withTypedArray: true,
            withSparseArray: true
          }),
          (value) => {
            const back = Effect.runSync(roundTrip(value))
            assert.isTrue(sameValue(back, value), `${inspect(back)} is not ${inspect(value)}`)
          }
        ),
        { numRuns: 500 }
      )
    })

    it("a Set whose member has a non-function toString (fast-check's counterexample)", () => {
      const value = new Set([{ toString: new Date(0) }, 0n])
      assert.isTrue(sameValue(Effect.runSync(roundTrip(value)), value))
    })

    it("a Map holding an Invalid Date (fast-check's counterexample)", () => {
      const value = new Map<unknown, unknown>([["d", new Date(Number.NaN)]])
      const back = Effect.runSync(roundTrip(value)) as Map<unknown, unknown>
      assert.isTrue(sameValue(back, value))
      assert.isTrue(Number.isNaN((back.get("d") as Date).getTime()))
      // And the comparison still tells a valid date from an invalid one.
      assert.isFalse(sameValue(new Map([["d", new Date(0)]]), value))
    })

    it("a Map keyed by an empty array beside an Invalid Date (fast-check's counterexample)", () => {
      const value = new Map<unknown, unknown>([[[], 0n], ["", new Date(Number.NaN)]])
      const back = Effect.runSync(roundTrip(value)) as Map<unknown, unknown>
      assert.isTrue(sameValue(back, value))
      // The comparison still tells the keys and sparse arrays apart.
      assert.isFalse(sameValue(new Map<unknown, unknown>([[[0], 0n], ["", new Date(Number.NaN)]]), value))
      assert.isFalse(sameValue([1, , 3], [1, undefined, 3])) // eslint-disable-line no-sparse-arrays
    })
  })

  describe("unserializable values", () => {
    it.effect("a function", () =>
      Effect.gen(function*() {
        const error = yield* failure(codec.encode(function fit() {}))
        assert.strictEqual(error.reason, "Unserializable")
        assert.include(error.message, "function")
      }))

    it.effect("a function deep inside names its path", () =>
      Effect.gen(function*() {
        const error = yield* failure(codec.encode({ model: { steps: [1, { fit: () => 1 }] } }))
        assert.strictEqual(error.reason, "Unserializable")
        assert.include(error.message, "value.model.steps[1].fit")
      }))

    it.effect("a symbol", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* failure(codec.encode(Symbol("s")))).reason, "Unserializable")
        assert.strictEqual((yield* failure(codec.encode({ s: Symbol("s") }))).reason, "Unserializable")
      }))

    it.effect("a class instance with private state", () =>
      Effect.gen(function*() {
        class Account {
          #balance = 100
          constructor(readonly owner: string) {}
          get balance() {
            return this.#balance
          }
        }
        const error = yield* failure(codec.encode({ account: new Account("ada") }))
        assert.strictEqual(error.reason, "Unserializable")
        assert.include(error.message, "value.account")
        assert.include(error.message, "Account")
      }))

    it.effect("a getter that throws", () =>
      Effect.gen(function*() {
        const value = {
          get boom(): number {
            throw new Error("no")
          }
        }
        assert.strictEqual((yield* failure(codec.encode(value))).reason, "Unserializable")
      }))

    it.effect("values v8 itself refuses (WeakMap, Promise)", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* failure(codec.encode(new WeakMap()))).reason, "Unserializable")
        assert.strictEqual((yield* failure(codec.encode([Promise.resolve(1)]))).reason, "Unserializable")
      }))
  })

  describe("header and compression", () => {
    it.effect("inspect reads format, version and codec", () =>
      Effect.gen(function*() {
        const encoded = yield* codec.encode(new Map([["a", 1]]))
        assert.deepStrictEqual(yield* codec.inspect(encoded.bytes), { format: "v8", formatVersion: 1, codec: "none" })
        assert.deepStrictEqual(
          yield* codec.inspect((yield* codec.encode("x".repeat(10_000))).bytes),
          { format: "json", formatVersion: 1, codec: "lz4" }
        )
      }))

    it.effect("a small value is not compressed and carries a header of at most 20 bytes (8 of them the key slot)", () =>
      Effect.gen(function*() {
        const encoded = yield* codec.encode(record)
        assert.strictEqual(encoded.codec, "none")
        assert.isBelow(encoded.rawBytes, 256)
        assert.isAtMost(encoded.bytes.byteLength - encoded.rawBytes, 20)
        const v8 = yield* codec.encode(new Set([record]))
        assert.isAtMost(v8.bytes.byteLength - v8.rawBytes, 18)
      }))

    it.effect("a compressible large value is compressed with lz4 and smaller", () =>
      Effect.gen(function*() {
        const value = Array.from({ length: 2000 }, (_, i) => ({ id: i, name: "row", active: i % 2 === 0 }))
        const encoded = yield* codec.encode(value)
        assert.strictEqual(encoded.codec, "lz4")
        assert.isBelow(encoded.bytes.byteLength, encoded.rawBytes / 3)
        assert.deepStrictEqual(yield* codec.decode(encoded.bytes), value)
      }))

    it.effect("incompressible random bytes are stored with codec none", () =>
      Effect.gen(function*() {
        const bytes = new Uint8Array(Crypto.randomBytes(64 * 1024))
        const encoded = yield* codec.encode(bytes)
        assert.strictEqual(encoded.codec, "none")
        assert.strictEqual(encoded.rawBytes, bytes.byteLength)
        assert.deepStrictEqual(yield* codec.decode(encoded.bytes), bytes)
      }))

    for (const name of ["gzip", "brotli", "none"] as const) {
      it.effect(`compression: ${name}`, () =>
        Effect.gen(function*() {
          const service = CodecDefault.make({ compression: { codec: name, level: 1 } })
          const value = "abc".repeat(5000)
          const encoded = yield* service.encode(value)
          assert.strictEqual(encoded.codec, name)
          assert.deepStrictEqual(yield* service.decode(encoded.bytes), value)
          // Any codec decodes whatever any other configuration wrote.
          assert.deepStrictEqual(yield* codec.decode(encoded.bytes), value)
        }))
    }

    it.effect("per-kind compression settings", () =>
      Effect.gen(function*() {
        const service = CodecDefault.make({ compression: { codec: "gzip", byKind: { bytes: { codec: "none" } } } })
        assert.strictEqual((yield* service.encode(new Uint8Array(10_000))).codec, "none")
        assert.strictEqual((yield* service.encode("a".repeat(10_000))).codec, "gzip")
      }))

    it.effect("minSize and minSavings are configurable", () =>
      Effect.gen(function*() {
        const eager = CodecDefault.make({ compression: { minSize: 0 } })
        assert.strictEqual((yield* eager.encode("a".repeat(100))).codec, "lz4")
        const picky = CodecDefault.make({ compression: { minSavings: 0.999 } })
        assert.strictEqual((yield* picky.encode("a".repeat(10_000))).codec, "none")
      }))

    it.effect.skipIf(Compression.byName.zstd.available)(
      "an unavailable codec is a typed error",
      () =>
        Effect.gen(function*() {
          const service = CodecDefault.make({ compression: { codec: "zstd" } })
          const error = yield* failure(service.encode("a".repeat(10_000)))
          assert.strictEqual(error.reason, "CompressionFailed")
          assert.include(error.message, "zstd")
        })
    )
  })

  describe("corrupt and unknown data", () => {
    const sample = Effect.map(codec.encode("a".repeat(10_000)), (encoded) => encoded.bytes)
    const tampered = (f: (bytes: Uint8Array) => Uint8Array) => Effect.map(sample, (bytes) => f(Uint8Array.from(bytes)))

    const cases: ReadonlyArray<readonly [string, (bytes: Uint8Array) => Uint8Array, CodecError["reason"]]> = [
      ["bad magic", (bytes) => (bytes[0] = 0, bytes), "Corrupt"],
      ["empty input", () => new Uint8Array(0), "Corrupt"],
      ["truncated header", (bytes) => bytes.subarray(0, 6), "Corrupt"],
      ["truncated inside the varints", (bytes) => bytes.subarray(0, 10), "Corrupt"],
      ["truncated payload", (bytes) => bytes.subarray(0, bytes.length - 5), "Corrupt"],
      ["garbage payload", (bytes) => (bytes.fill(0x41, 20), bytes), "Corrupt"],
      ["a raw length that disagrees", (bytes) => (bytes[10] = bytes[10]! ^ 1, bytes), "Corrupt"],
      ["a header version from the future", (bytes) => (bytes[2] = 9, bytes), "UnknownFormat"],
      ["an unknown compression id", (bytes) => (bytes[3] = 200, bytes), "UnknownFormat"],
      ["an unknown format id", (bytes) => (bytes[5] = "x".charCodeAt(0), bytes), "UnknownFormat"],
      ["a format version from the future", (bytes) => (bytes[9] = 7, bytes), "UnknownFormat"]
    ]
    for (const [name, damage, reason] of cases) {
      it.effect(`${name} → ${reason}`, () =>
        Effect.gen(function*() {
          const bytes = yield* tampered(damage)
          const error = yield* failure(codec.decode(bytes))
          assert.strictEqual(error.reason, reason)
        }))
    }

    it.effect("the sample layout is what the cases above assume", () =>
      Effect.gen(function*() {
        const bytes = yield* sample
        // magic, version 2, lz4, "json", format version 1, then the raw length and the key slot
        assert.deepStrictEqual([...bytes.subarray(0, 10)], [0xca, 0xc5, 2, 1, 4, 0x6a, 0x73, 0x6f, 0x6e, 1])
      }))

    it.effect("corrupt v8 and json payloads", () =>
      Effect.gen(function*() {
        const v8 = Uint8Array.from((yield* codec.encode(new Set([1]))).bytes)
        v8[v8.length - 3] = 0xee
        assert.strictEqual((yield* failure(codec.decode(v8))).reason, "Corrupt")
        const json = Uint8Array.from((yield* codec.encode({ a: 1 })).bytes)
        json[json.length - 1] = 0x2c
        assert.strictEqual((yield* failure(codec.decode(json))).reason, "Corrupt")
      }))

    it.effect("a gzip bomb is stopped at the stated size", () =>
      Effect.gen(function*() {
        const prefix = Header.template("json", 1)
        const bomb = Zlib.gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20))
        const error = yield* failure(codec.decode(Header.frame(prefix, Compression.byName.gzip.id, 100, bomb)))
        assert.strictEqual(error.reason, "Corrupt")
      }))

    it.effect("a format written by a handler this codec lacks", () =>
      Effect.gen(function*() {
        const custom: FormatHandler<{ readonly point: readonly [number, number] }> = {
          format: "point",
          version: 1,
          kind: "object",
          guard: (value): value is { readonly point: readonly [number, number] } =>
            typeof value === "object" && value !== null && "point" in value,
          encode: (value) => Effect.succeed(new Uint8Array(new Float64Array(value.point).buffer)),
          decode: (payload) => {
            const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
            return Effect.succeed({ point: [view.getFloat64(0, true), view.getFloat64(8, true)] as const })
          }
        }
        const extended = CodecDefault.make({ handlers: [custom] })
        const encoded = yield* extended.encode({ point: [1.5, 2.5] })
        assert.strictEqual(encoded.format, "point")
        assert.deepStrictEqual(yield* extended.decode(encoded.bytes), { point: [1.5, 2.5] })
        const error = yield* failure(codec.decode(encoded.bytes))
        assert.strictEqual(error.reason, "UnknownFormat")
        assert.strictEqual(error.format, "point")
      }))
  })

  describe("schemas", () => {
    class Point extends Schema.Class<Point>("Point")({ x: Schema.Number, y: Schema.Number }) {
      get norm() {
        return Math.hypot(this.x, this.y)
      }
    }
    const Scores = Schema.Struct({ when: Schema.Date, scores: Schema.Array(Schema.Number) })

    it.effect("class instances round-trip through their schema", () =>
      Effect.gen(function*() {
        const encoded = yield* codec.encode(new Point({ x: 3, y: 4 }), { schema: Point })
        const back = yield* codec.decode(encoded.bytes, { schema: Point })
        assert.instanceOf(back, Point)
        assert.strictEqual((back as Point).norm, 5)
        // Stored as the schema's encoded form: readable without the schema too.
        assert.deepStrictEqual(yield* codec.decode(encoded.bytes), { x: 3, y: 4 })
      }))

    it.effect("transformations apply both ways", () =>
      Effect.gen(function*() {
        const value = { when: new Date("2024-05-06T00:00:00Z"), scores: [1, 2] }
        const encoded = yield* codec.encode(value, { schema: Scores })
        assert.deepStrictEqual(yield* codec.decode(encoded.bytes), { when: "2024-05-06T00:00:00.000Z", scores: [1, 2] })
        assert.deepStrictEqual(yield* codec.decode(encoded.bytes, { schema: Scores }), value)
      }))

    it.effect("a value that does not match on encode is SchemaMismatch", () =>
      Effect.gen(function*() {
        const error = yield* failure(codec.encode({ when: "not a date", scores: [1] }, { schema: Scores }))
        assert.strictEqual(error.reason, "SchemaMismatch")
        assert.strictEqual(error.method, "Codec.encode")
      }))

    it.effect("stored data that does not match on decode is SchemaMismatch", () =>
      Effect.gen(function*() {
        const encoded = yield* codec.encode({ x: "three" })
        const error = yield* failure(codec.decode(encoded.bytes, { schema: Point }))
        assert.strictEqual(error.reason, "SchemaMismatch")
        assert.strictEqual(error.method, "Codec.decode")
      }))
  })

  it("rejects a handler with an invalid format id", () => {
    const bad = { ...CodecDefault.jsonHandler, format: "has space" }
    assert.throws(() => CodecDefault.make({ handlers: [bad] }))
  })
})
