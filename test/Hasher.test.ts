import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import fc from "fast-check"
import { canonicalJson, describedContains, describedEquals } from "../src/key/describeParams.js"
import { encodeParams } from "../src/key/encoding.js"
import { Hasher, KeyError } from "../src/key/service.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import type { KeyParams } from "../src/schema/CacheKey.js"

const withHasher = <A, E>(f: (hasher: Hasher.Service) => Effect.Effect<A, E>) =>
  Effect.flatMap(Hasher, f).pipe(Effect.provide(HasherXxhash.layer))

const keyOf = (params: KeyParams) => withHasher((hasher) => hasher.key(params))

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")
const bytesOf = (params: KeyParams) => hex(encodeParams(params))

const keyErrorOf = (params: unknown) =>
  withHasher((hasher) => Effect.either(hasher.key(params as KeyParams))).pipe(
    Effect.map((result) => {
      assert.isTrue(Either.isLeft(result), "expected a KeyError")
      const error = (result as Either.Left<KeyError, unknown>).left
      assert.instanceOf(error, KeyError)
      return error
    })
  )

class Model {
  constructor(readonly name: string) {}
  fit() {}
}

class Versioned {
  constructor(readonly id: number, readonly tag: string) {}
  toCacheKey() {
    return { id: this.id, tag: this.tag }
  }
}

describe("Hasher (xxhash)", () => {
  describe("golden vectors", () => {
    // These keys are part of the public contract: a change here invalidates every user's cache.
    // Never update them without bumping ENCODING_VERSION.
    const golden: ReadonlyArray<readonly [string, () => KeyParams, string]> = [
      ["empty object", () => ({}), "adff3e1670fc34c7"],
      ["readme key", () => ({ model: "xgboost", dataset: "customer_data", version: "1.0" }), "6f5f5d2873dbc730"],
      ["one number", () => ({ a: 1 }), "af40f7eef2026a37"],
      ["negative zero", () => ({ a: -0 }), "2946281d50f77ab9"],
      ["float, NaN, Infinity", () => ({ x: 0.1, n: NaN, i: -Infinity }), "7e4904da8f1b3719"],
      ["null", () => ({ a: null }), "aac44534af6d62a0"],
      ["null vs absent", () => ({ a: undefined, b: 1 }), "d79f7182104db3e0"],
      ["booleans", () => ({ t: true, f: false }), "698a2550c32382ca"],
      ["bigint", () => ({ big: 12345678901234567890n, neg: -1n }), "50d430107a3c08c1"],
      ["unicode strings", () => ({ "名前": "café ☕", emoji: "𝄞🎉", empty: "" }), "87ab44c97de6de7c"],
      ["nested", () => ({ outer: { inner: [1, "two", [3, { four: 4 }]], flag: true } }), "63d5d573f325c7bc"],
      // eslint-disable-next-line no-sparse-arrays -- a hole is the point of the vector
      ["array with hole", () => ({ arr: [1, , 3] }), "33619634414f299c"],
      ["map", () => ({ m: new Map<unknown, unknown>([["b", 2], ["a", [1]], [3, "c"]]) }), "0eb9384efadd1138"],
      ["set", () => ({ s: new Set<unknown>(["x", 1, 2n, null]) }), "62d329630d6f834a"],
      ["date", () => ({ when: new Date("2024-01-02T03:04:05.678Z") }), "7c65bd6ed11c1915"],
      ["typed arrays", () => ({
        f64: new Float64Array([1.5, -2, 3]),
        i32: new Int32Array([1, -1]),
        u8: new Uint8Array([0, 255]),
        i64: new BigInt64Array([-5n])
      }), "2a3184d5b65fa936"],
      ["url", () => ({ u: new URL("https://example.com/a?b=c") }), "0fae4998a06b1af1"],
      ["toCacheKey", () => ({ obj: { toCacheKey: () => ({ id: 42, kind: "model" }) } }), "5a78f11fde1111ef"]
    ]
    for (const [name, params, expected] of golden) {
      it.effect(name, () =>
        Effect.gen(function*() {
          assert.strictEqual(yield* keyOf(params()), expected)
        }))
    }

    it("pins the byte layout of simple keys", () => {
      // version 1, object tag, count 0
      assert.strictEqual(bytesOf({}), "01" + "09" + "00000000")
      // version, object, count 1, name "a" (u32 length + UTF-8), number tag, f64 LE 1.0
      assert.strictEqual(bytesOf({ a: 1 }), "01" + "09" + "01000000" + "01000000" + "61" + "05" + "000000000000f03f")
      assert.strictEqual(
        bytesOf({ a: [undefined, null, true, false] }),
        "0109010000000100000061" + "0804000000" + "01020403"
      )
      assert.strictEqual(bytesOf({ a: "é" }), "0109010000000100000061" + "0702000000c3a9")
      assert.strictEqual(bytesOf({ a: -12n }), "0109010000000100000061" + "0603000000" + "2d3132")
    })

    it.effect("hashBytes is XXH64 seed 0 as 16 lowercase hex", () =>
      withHasher((hasher) =>
        Effect.sync(() => {
          assert.strictEqual(hasher.hashBytes(new Uint8Array()), "ef46db3751d8e999")
          assert.strictEqual(hasher.hashBytes(new TextEncoder().encode("abc")), "44bc2cf5ad770999")
          // Zero-padded: every key is exactly 16 hex digits.
          for (let i = 0; i < 300; i++) {
            assert.match(hasher.hashBytes(new Uint8Array([i & 255, i >> 8])), /^[0-9a-f]{16}$/)
          }
        })
      ))
  })

  describe("rules", () => {
    it.effect("name order never matters, at any depth", () =>
      Effect.gen(function*() {
        const a = yield* keyOf({ model: "xgboost", version: "1.0", opts: { x: 1, y: [1, 2] } })
        const b = yield* keyOf({ opts: { y: [1, 2], x: 1 }, version: "1.0", model: "xgboost" })
        assert.strictEqual(a, b)
        const nullProto = Object.assign(Object.create(null), { version: "1.0", model: "xgboost" })
        assert.strictEqual(yield* keyOf(nullProto), yield* keyOf({ model: "xgboost", version: "1.0" }))
      }))

    it.effect("Map and Set are unordered; arrays are ordered", () =>
      Effect.gen(function*() {
        const m1 = new Map<unknown, unknown>([["a", 1], ["b", { c: [2] }], [3, new Set([1, 2])]])
        const m2 = new Map<unknown, unknown>([[3, new Set([2, 1])], ["b", { c: [2] }], ["a", 1]])
        assert.strictEqual(yield* keyOf({ m: m1 }), yield* keyOf({ m: m2 }))
        assert.strictEqual(yield* keyOf({ s: new Set(["x", "y", 1]) }), yield* keyOf({ s: new Set([1, "y", "x"]) }))
        assert.notStrictEqual(yield* keyOf({ a: [1, 2] }), yield* keyOf({ a: [2, 1] }))
        // A Map's key and value stay paired.
        assert.notStrictEqual(
          yield* keyOf({ m: new Map([["a", 1], ["b", 2]]) }),
          yield* keyOf({ m: new Map([["a", 2], ["b", 1]]) })
        )
      }))

    it.effect("types matter", () =>
      Effect.gen(function*() {
        const distinct: ReadonlyArray<unknown> = [
          1,
          1n,
          "1",
          true,
          "true",
          null,
          [1],
          { 0: 1 },
          new Set([1]),
          new Map([[0, 1]]),
          new Date(1),
          new Uint8Array([1]),
          new Int8Array([1]),
          new Uint8ClampedArray([1]),
          new Uint8Array([1]).buffer,
          new DataView(new Uint8Array([1]).buffer),
          new URL("https://a.example/"),
          "https://a.example/",
          { toCacheKey: () => 1 },
          [undefined],
          [null],
          [],
          {},
          "",
          0,
          false
        ]
        const keys = new Set<string>()
        for (const value of distinct) keys.add(yield* keyOf({ v: value }))
        assert.strictEqual(keys.size, distinct.length)
      }))

    it.effect("-0 and 0, NaNs, 1 and 1.0 give the same key", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* keyOf({ a: -0 }), yield* keyOf({ a: 0 }))
        assert.strictEqual(yield* keyOf({ a: [-0, { b: -0 }] }), yield* keyOf({ a: [0, { b: 0 }] }))
        assert.strictEqual(yield* keyOf({ a: NaN }), yield* keyOf({ a: 0 / 0 }))
        assert.strictEqual(yield* keyOf({ a: NaN }), yield* keyOf({ a: Math.sqrt(-1) }))
        assert.strictEqual(yield* keyOf({ a: 1 }), yield* keyOf({ a: 1.0 }))
        assert.notStrictEqual(yield* keyOf({ a: Infinity }), yield* keyOf({ a: -Infinity }))
      }))

    it.effect("undefined names are absent; null is a value; undefined array slots count", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* keyOf({ a: 1, b: undefined }), yield* keyOf({ a: 1 }))
        assert.strictEqual(yield* keyOf({ o: { a: 1, b: undefined } }), yield* keyOf({ o: { a: 1 } }))
        assert.notStrictEqual(yield* keyOf({ a: 1, b: null }), yield* keyOf({ a: 1 }))
        // eslint-disable-next-line no-sparse-arrays -- a hole is the point of the test
        assert.strictEqual(yield* keyOf({ a: [1, , 3] }), yield* keyOf({ a: [1, undefined, 3] }))
        assert.notStrictEqual(yield* keyOf({ a: [1, undefined] }), yield* keyOf({ a: [1] }))
        assert.notStrictEqual(yield* keyOf({ a: [undefined, 1] }), yield* keyOf({ a: [1, undefined] }))
      }))

    it.effect("binary values: dtype and bytes; Buffer is a Uint8Array", () =>
      Effect.gen(function*() {
        const bytes = [1, 2, 3, 4]
        assert.strictEqual(yield* keyOf({ b: Buffer.from(bytes) }), yield* keyOf({ b: new Uint8Array(bytes) }))
        assert.notStrictEqual(yield* keyOf({ b: new Int8Array(bytes) }), yield* keyOf({ b: new Uint8Array(bytes) }))
        // A view encodes only its own window of the underlying buffer.
        const big = new Uint8Array([9, 1, 2, 3, 4, 9])
        assert.strictEqual(yield* keyOf({ b: big.subarray(1, 5) }), yield* keyOf({ b: new Uint8Array(bytes) }))
        assert.notStrictEqual(
          yield* keyOf({ f: new Float64Array([1, 2]) }),
          yield* keyOf({ f: new Float64Array([1, 2.000001]) })
        )
        assert.notStrictEqual(yield* keyOf({ f: new Float32Array(2) }), yield* keyOf({ f: new Int32Array(2) }))
        assert.notStrictEqual(yield* keyOf({ f: new BigInt64Array(1) }), yield* keyOf({ f: new BigUint64Array(1) }))
      }))

    it.effect("Dates by epoch ms; an invalid Date fails", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* keyOf({ d: new Date(1000) }), yield* keyOf({ d: new Date("1970-01-01T00:00:01Z") }))
        assert.notStrictEqual(yield* keyOf({ d: new Date(1000) }), yield* keyOf({ d: 1000 }))
        const error = yield* keyErrorOf({ d: new Date("nope") })
        assert.strictEqual(error.reason, "Unhashable")
        assert.strictEqual(error.path, "params.d")
      }))

    it.effect("toCacheKey: encoded as what it returns, behind its own tag", () =>
      Effect.gen(function*() {
        assert.strictEqual(
          yield* keyOf({ m: new Versioned(1, "a") }),
          yield* keyOf({ m: { toCacheKey: () => ({ tag: "a", id: 1 }) } })
        )
        assert.notStrictEqual(yield* keyOf({ m: new Versioned(1, "a") }), yield* keyOf({ m: { id: 1, tag: "a" } }))
        assert.notStrictEqual(yield* keyOf({ m: new Versioned(1, "a") }), yield* keyOf({ m: new Versioned(2, "a") }))
        // Recursive: what it returns may hold more toCacheKey objects.
        const outer = { toCacheKey: () => [new Versioned(1, "a"), new Versioned(2, "b")] }
        assert.match(yield* keyOf({ outer }), /^[0-9a-f]{16}$/)
        // Re-entrant: a toCacheKey that computes another key must not corrupt the outer encoding.
        const reentrant = { toCacheKey: () => hex(encodeParams({ inner: "x" })) }
        assert.strictEqual(
          yield* keyOf({ r: reentrant, z: "tail" }),
          yield* keyOf({ r: { toCacheKey: () => hex(encodeParams({ inner: "x" })) }, z: "tail" })
        )
      }))

    it.effect("URLs by href with their own tag", () =>
      Effect.gen(function*() {
        assert.strictEqual(
          yield* keyOf({ u: new URL("https://example.com/a/../b") }),
          yield* keyOf({ u: new URL("https://example.com/b") })
        )
        assert.notStrictEqual(yield* keyOf({ u: new URL("file:///tmp/x") }), yield* keyOf({ u: "file:///tmp/x" }))
      }))

    it("long and short strings encode alike (JS loop vs TextEncoder)", () => {
      const encoder = new TextEncoder()
      fc.assert(
        fc.property(
          fc.oneof(
            fc.string({ unit: "binary", maxLength: 120 }),
            fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 80 }).map((units) =>
              String.fromCharCode(...units)
            )
          ),
          (s) => {
            const utf8 = encoder.encode(s)
            const length = Buffer.alloc(4)
            length.writeUInt32LE(utf8.length)
            assert.strictEqual(bytesOf({ s }), "010901000000" + "0100000073" + "07" + hex(length) + hex(utf8))
          }
        ),
        { numRuns: 500 }
      )
    })
  })

  describe("errors", () => {
    it.effect("a function nested in objects, arrays and maps names its path", () =>
      Effect.gen(function*() {
        const model = new Model("m")
        let error = yield* keyErrorOf({ model: { fit: model.fit } })
        assert.strictEqual(error.reason, "Unhashable")
        assert.strictEqual(error.method, "Hasher.key")
        assert.strictEqual(error.path, "params.model.fit")
        assert.match(error.message, /^Hasher\.key: params\.model\.fit: a function \(fit\) is not hashable/)

        error = yield* keyErrorOf({ items: [1, 2, 3, () => 1] })
        assert.strictEqual(error.path, "params.items[3]")

        error = yield* keyErrorOf({ lookup: new Map<unknown, unknown>([["a", [0, { f: () => 1 }]]]) })
        assert.strictEqual(error.path, `params.lookup<Map value for "a">[1].f`)

        error = yield* keyErrorOf({ lookup: new Map<unknown, unknown>([[1, 1], [() => 1, 2]]) })
        assert.strictEqual(error.path, "params.lookup<Map key #1>")

        error = yield* keyErrorOf({ tags: new Set<unknown>(["a", Symbol("s")]) })
        assert.strictEqual(error.path, "params.tags<Set element #1>")

        error = yield* keyErrorOf({ "odd name": { "x-y": [() => 1] } })
        assert.strictEqual(error.path, `params["odd name"]["x-y"][0]`)
      }))

    it.effect("symbols, class instances and other unhashable objects", () =>
      Effect.gen(function*() {
        let error = yield* keyErrorOf({ s: Symbol("secret") })
        assert.strictEqual(error.path, "params.s")
        assert.match(error.description, /symbol \(Symbol\(secret\)\)/)

        error = yield* keyErrorOf({ config: { model: new Model("m") } })
        assert.strictEqual(error.path, "params.config.model")
        assert.match(error.description, /a Model is not hashable; give it a toCacheKey\(\) method/)

        for (const value of [new WeakMap(), Promise.resolve(1), /re/, new Error("x"), new String("s")]) {
          error = yield* keyErrorOf({ v: value })
          assert.strictEqual(error.reason, "Unhashable")
          assert.strictEqual(error.path, "params.v")
        }

        error = yield* keyErrorOf({ o: { [Symbol("k")]: 1 } })
        assert.strictEqual(error.path, "params.o")
      }))

    it.effect("cycles fail instead of overflowing; shared references are fine", () =>
      Effect.gen(function*() {
        const node: Record<string, unknown> = { name: "a" }
        node.self = { parent: node }
        const error = yield* keyErrorOf({ tree: node })
        assert.strictEqual(error.path, "params.tree.self.parent")
        assert.match(error.description, /cycle/)

        const list: Array<unknown> = [1]
        list.push(list)
        assert.strictEqual((yield* keyErrorOf({ list })).path, "params.list[1]")

        const shared = { x: 1 }
        assert.match(yield* keyOf({ a: shared, b: [shared, shared] }), /^[0-9a-f]{16}$/)

        // A toCacheKey that returns itself is a cycle too; one returning fresh copies hits the depth limit.
        const selfish: { toCacheKey(): unknown } = { toCacheKey: () => selfish }
        assert.strictEqual((yield* keyErrorOf({ s: selfish })).path, "params.s.toCacheKey()")
        const endless = (): unknown => ({ toCacheKey: endless })
        assert.match((yield* keyErrorOf({ e: endless() })).description, /deeper than/)
      }))

    it.effect("toCacheKey that throws, getters that throw", () =>
      Effect.gen(function*() {
        let error = yield* keyErrorOf({
          m: {
            toCacheKey: () => {
              throw new Error("boom")
            }
          }
        })
        assert.strictEqual(error.path, "params.m")
        assert.match(error.description, /toCacheKey\(\) threw: boom/)
        assert.instanceOf(error.cause, Error)

        error = yield* keyErrorOf({
          o: {
            get bad() {
              throw new Error("nope")
            }
          }
        })
        assert.strictEqual(error.path, "params.o.bad")
      }))

    it.effect("top-level params must be a plain object", () =>
      Effect.gen(function*() {
        for (const params of [null, undefined, "x", 1, [1], new Map(), new Model("m"), new Date(0)]) {
          const error = yield* keyErrorOf(params)
          assert.strictEqual(error.reason, "InvalidKey")
          assert.strictEqual(error.path, "params")
        }
      }))

    it.effect("an error leaves the encoder reusable", () =>
      Effect.gen(function*() {
        const before = yield* keyOf({ a: [1, { b: 2 }] })
        const node: Record<string, unknown> = {}
        node.node = node
        yield* keyErrorOf({ x: [{ y: node }] })
        yield* keyErrorOf({ x: [{ y: () => 1 }] })
        assert.strictEqual(yield* keyOf({ a: [1, { b: 2 }] }), before)
      }))
  })

  describe("describe", () => {
    const describeOf = (params: KeyParams) => withHasher((hasher) => hasher.describe(params))

    it.effect("JSON-safe, tagged where JSON falls short", () =>
      Effect.gen(function*() {
        const description = yield* describeOf({
          s: "x",
          n: 1.5,
          z: -0,
          b: true,
          nul: null,
          gone: undefined,
          nan: NaN,
          inf: -Infinity,
          big: 10n,
          arr: [1, undefined, "a"],
          obj: { y: 2, x: 1 },
          date: new Date("2024-01-02T03:04:05.678Z"),
          map: new Map<unknown, unknown>([["b", 2], ["a", 1]]),
          set: new Set(["y", "x"]),
          f64: new Float64Array([1, 2, 3]),
          url: new URL("https://example.com/"),
          key: new Versioned(7, "v")
        })
        const empty = yield* withHasher((hasher) => Effect.succeed(hasher.hashBytes(new Uint8Array(24))))
        assert.deepStrictEqual(description, {
          arr: [1, { $undefined: true }, "a"],
          b: true,
          big: { $bigint: "10" },
          date: { $date: "2024-01-02T03:04:05.678Z" },
          f64: {
            $array: "float64",
            length: 3,
            xxh64: yield* withHasher((hasher) =>
              Effect.succeed(hasher.hashBytes(new Uint8Array(new Float64Array([1, 2, 3]).buffer)))
            )
          },
          inf: { $number: "-Infinity" },
          key: { $key: { id: 7, tag: "v" } },
          map: { $map: [["a", 1], ["b", 2]] },
          n: 1.5,
          nan: { $number: "NaN" },
          nul: null,
          obj: { x: 1, y: 2 },
          s: "x",
          set: { $set: ["x", "y"] },
          url: { $url: "https://example.com/" },
          z: 0
        })
        assert.notStrictEqual(empty, (description.f64 as { xxh64: string }).xxh64)
        // Round-trips through JSON unchanged.
        assert.deepStrictEqual(JSON.parse(JSON.stringify(description)), description)
        assert.deepStrictEqual(Object.keys(description), Object.keys(description).slice().sort())
      }))

    it.effect("deterministic across name, Map and Set order", () =>
      Effect.gen(function*() {
        const a = yield* describeOf({ m: new Map([["x", 1], ["y", 2]]), s: new Set([3, 1]), o: { q: 1, p: 2 } })
        const b = yield* describeOf({ o: { p: 2, q: 1 }, s: new Set([1, 3]), m: new Map([["y", 2], ["x", 1]]) })
        assert.strictEqual(JSON.stringify(a), JSON.stringify(b))
        assert.isTrue(describedEquals(a, b))
        assert.isTrue(describedEquals({ a: 1, b: [{ c: 1, d: 2 }] }, { b: [{ d: 2, c: 1 }], a: 1 }))
        assert.isFalse(describedEquals({ a: 1 }, { a: "1" }))
        assert.strictEqual(canonicalJson({ b: 1, a: [1, { d: 1, c: 2 }] }), `{"a":[1,{"c":2,"d":1}],"b":1}`)
      }))

    it.effect("describedContains matches a subset of described params", () =>
      Effect.gen(function*() {
        const stored = yield* describeOf({ model: "xgboost", when: new Date(0), tags: new Set(["b", "a"]) })
        assert.isTrue(describedContains(stored, yield* describeOf({ model: "xgboost" })))
        assert.isTrue(describedContains(stored, yield* describeOf({ tags: new Set(["a", "b"]), when: new Date(0) })))
        assert.isFalse(describedContains(stored, yield* describeOf({ model: "lightgbm" })))
        assert.isFalse(describedContains(stored, yield* describeOf({ other: 1 })))
      }))

    it.effect("fails like key does, with method Hasher.describe", () =>
      Effect.gen(function*() {
        const result = yield* Effect.either(describeOf({ a: { b: [() => 1] } }))
        assert.isTrue(Either.isLeft(result))
        const error = (result as Either.Left<KeyError, unknown>).left
        assert.strictEqual(error.method, "Hasher.describe")
        assert.strictEqual(error.path, "params.a.b[0]")
        const invalid = yield* Effect.either(describeOf([] as unknown as KeyParams))
        assert.strictEqual(Either.isLeft(invalid) && invalid.left.reason, "InvalidKey")
      }))
  })

  describe("properties", () => {
    // Keys in a small domain so random pairs often collide structurally: that is where an
    // ambiguous encoding would show.
    const smallKey = fc.constantFrom("", "a", "b", "ab", "0", "__proto__", "é")
    const { value: keyValue } = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        fc.constantFrom(null, true, false, 0, -0, 1, 1.5, -1, NaN, Infinity, 10n, -10n, 0n, ""),
        smallKey,
        fc.double(),
        fc.bigInt(),
        fc.string({ maxLength: 4 }),
        fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(5) }),
        fc.constantFrom("uint8", "int8", "float64").chain((dtype) =>
          fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 2 }).map((xs) =>
            dtype === "uint8" ? new Uint8Array(xs) : dtype === "int8" ? new Int8Array(xs) : new Float64Array(xs)
          )
        ),
        fc.array(fc.oneof(tie("value"), fc.constant(undefined)), { maxLength: 3 }),
        fc.dictionary(smallKey, fc.oneof(tie("value"), fc.constant(undefined)), { maxKeys: 3 }),
        fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 3 }).map((entries) => new Map(entries)),
        fc.array(tie("value"), { maxLength: 3 }).map((elements) => new Set(elements))
      )
    }))

    // A tiny domain where random pairs are often near misses ([undefined] vs [null], 0 vs -0 vs 0n).
    const { tiny } = fc.letrec<{ tiny: unknown }>((tie) => ({
      tiny: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        fc.constantFrom(null, 0, -0, NaN, "", "0", 0n, false),
        fc.array(fc.oneof(tie("tiny"), fc.constantFrom(undefined, null)), { maxLength: 2 }),
        fc.dictionary(fc.constantFrom("a", "b"), fc.oneof(tie("tiny"), fc.constant(undefined)), { maxKeys: 2 }),
        fc.array(fc.tuple(tie("tiny"), tie("tiny")), { maxLength: 2 }).map((entries) => new Map(entries)),
        fc.array(tie("tiny"), { maxLength: 2 }).map((elements) => new Set(elements))
      )
    }))

    // The same value spelled differently: Map/Set/name insertion order reversed, 0 and -0 swapped.
    const respell = (v: unknown): unknown => {
      if (typeof v === "number") return v === 0 ? (Object.is(v, -0) ? 0 : -0) : v
      if (typeof v !== "object" || v === null || ArrayBuffer.isView(v) || v instanceof Date) return v
      if (Array.isArray(v)) return v.map(respell)
      if (v instanceof Map) return new Map([...v].reverse().map(([k, x]) => [respell(k), respell(x)]))
      if (v instanceof Set) return new Set([...v].reverse().map(respell))
      const out: Record<string, unknown> = {}
      for (const k of Object.keys(v).reverse()) {
        Object.defineProperty(out, k, { value: respell((v as Record<string, unknown>)[k]), enumerable: true })
      }
      return out
    }

    // An obviously injective, order-normalising reference form, independent of the encoder.
    const reference = (v: unknown): string => {
      switch (typeof v) {
        case "undefined":
          return "u"
        case "boolean":
          return v ? "T" : "F"
        case "number":
          return `n${Object.is(v, -0) ? 0 : v}`
        case "bigint":
          return `i${v}`
        case "string":
          return `s${JSON.stringify(v)}`
        default: {
          if (v === null) return "N"
          if (Array.isArray(v)) return `[${v.map(reference).join(",")}]`
          if (v instanceof Date) return `D${v.getTime()}`
          if (v instanceof Map) {
            return `M{${[...v].map(([k, x]) => `${reference(k)}=>${reference(x)}`).sort().join(",")}}`
          }
          if (v instanceof Set) return `S{${[...v].map(reference).sort().join(",")}}`
          if (ArrayBuffer.isView(v)) {
            return `B${(v as any)[Symbol.toStringTag]}:${
              Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex")
            }`
          }
          const o = v as Record<string, unknown>
          return `{${
            Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) =>
              `${JSON.stringify(k)}:${reference(o[k])}`
            )
              .join(",")
          }}`
        }
      }
    }

    it("permuting object names never changes the encoding", () => {
      const entriesAndPermutation = fc
        .uniqueArray(fc.tuple(fc.string(), keyValue), { selector: (entry) => entry[0], maxLength: 6 })
        .chain((entries) =>
          fc.tuple(
            fc.constant(entries),
            fc.shuffledSubarray(entries, { minLength: entries.length, maxLength: entries.length })
          )
        )
      fc.assert(
        fc.property(entriesAndPermutation, ([entries, permuted]) => {
          assert.strictEqual(bytesOf(Object.fromEntries(permuted)), bytesOf(Object.fromEntries(entries)))
        }),
        { numRuns: 300 }
      )
    })

    it("structurally different JSON values give different encodings", () => {
      fc.assert(
        fc.property(fc.jsonValue({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 3 }), (a, b) => {
          if (canonicalJson(a) !== canonicalJson(b)) assert.notStrictEqual(bytesOf({ v: a }), bytesOf({ v: b }))
          else assert.strictEqual(bytesOf({ v: a }), bytesOf({ v: b }))
        }),
        { numRuns: 1000 }
      )
    })

    it("encoding is deterministic across calls", () => {
      fc.assert(
        fc.property(fc.dictionary(fc.string(), keyValue, { maxKeys: 4 }), (params) => {
          const first = bytesOf(params)
          assert.strictEqual(bytesOf(params), first)
          assert.strictEqual(bytesOf(structuredClone(params)), first)
        }),
        { numRuns: 300 }
      )
    })

    it("respelling a value (orders, -0) never changes the encoding", () => {
      fc.assert(
        fc.property(keyValue, (v) => {
          assert.strictEqual(bytesOf({ v: respell(v) }), bytesOf({ v }))
        }),
        { numRuns: 1000 }
      )
    })

    it("near misses in a tiny domain encode differently", () => {
      fc.assert(
        fc.property(tiny, tiny, (a, b) => {
          assert.strictEqual(bytesOf({ v: a }) === bytesOf({ v: b }), reference(a) === reference(b))
        }),
        { numRuns: 3000 }
      )
    })

    it("encoding is injective: equal encodings iff equal values (modulo -0, NaN, name/Map/Set order)", () => {
      fc.assert(
        fc.property(keyValue, keyValue, (a, b) => {
          const sameValue = reference(a) === reference(b)
          const sameBytes = bytesOf({ v: a }) === bytesOf({ v: b })
          assert.strictEqual(sameBytes, sameValue, `${reference(a)} vs ${reference(b)}`)
        }),
        { numRuns: 3000 }
      )
    })
  })
})
