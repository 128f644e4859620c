import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { listFiles, tempDir } from "./support/tmp.js"

const KEY = "s3cr3t-signing-key-0123456789abcdef"

/** Runs `use` on a cache in `directory`, collecting warning messages. */
const withCache = <A, E>(directory: string, config: Cache.CacheConfig, use: Effect.Effect<A, E, Cache.Cache>) =>
  Effect.gen(function*() {
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning") warnings.push(String(Array.isArray(message) ? message[0] : message))
    })
    const result = yield* Effect.scoped(
      Effect.provide(use, Cache.layer({ directory, cleanupOnOpen: false, ...config }))
    ).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
    return { result, warnings }
  })

const small = { model: "m", scores: [1, 2, 3] }
const large = incompressible(40_000)

const rows = (directory: string) => {
  const db = new Database(path.join(directory, "cacheness.db"))
  try {
    return db.prepare("SELECT key, checksum, blob_id AS blobId FROM cacheness_entries ORDER BY key").all() as Array<
      { key: string; checksum: string; blobId: string | null }
    >
  } finally {
    db.close()
  }
}

const sql = (directory: string, text: string, ...args: Array<unknown>) => {
  const db = new Database(path.join(directory, "cacheness.db"))
  try {
    db.prepare(text).run(...args)
  } finally {
    db.close()
  }
}

const blobPath = (directory: string, id: string) => path.join(directory, "blobs", id.slice(0, 2), id.slice(2, 4), id)

describe("HMAC signing", () => {
  for (
    const [name, key] of [["a string", KEY], ["bytes", new TextEncoder().encode(KEY)], [
      "a Redacted",
      Redacted.make(KEY)
    ]] as const
  ) {
    it.scoped(`a key given as ${name}: entries are signed and read back`, () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const { result } = yield* withCache(
          directory,
          { signing: { key } },
          Effect.gen(function*() {
            const cache = yield* Cache.Cache
            yield* cache.put({ k: "small" }, small)
            yield* cache.put({ k: "large" }, large)
            return [yield* cache.get({ k: "small" }), yield* cache.get({ k: "large" }), yield* cache.verify()] as const
          })
        )
        assert.deepStrictEqual(result[0], Option.some(small))
        assert.deepStrictEqual(result[1], Option.some(large))
        assert.strictEqual(result[2].checked, 2)
        assert.deepStrictEqual(result[2].checksumMismatches, [])
        for (const row of rows(directory)) assert.match(row.checksum, /^hmac-sha256-v3:[0-9a-f]{64}$/)
      }))
  }

  it.scoped("the key is never written into the cache directory", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* withCache(
        directory,
        { signing: { key: KEY } },
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          for (let i = 0; i < 20; i++) yield* cache.put({ i }, i % 2 === 0 ? { i } : incompressible(20_000))
          yield* cache.verify({ repair: true })
          // Scanned while open (WAL and shared-memory files present) and after closing.
          for (const file of listFiles(directory)) {
            assert.strictEqual(fs.readFileSync(path.join(directory, file)).indexOf(KEY), -1, file)
          }
        })
      )
      const files = listFiles(directory)
      assert.isAbove(files.length, 10)
      for (const file of files) {
        const bytes = fs.readFileSync(path.join(directory, file))
        assert.strictEqual(bytes.indexOf(KEY), -1, `${file} contains the key`)
        assert.strictEqual(bytes.indexOf(Buffer.from(KEY).toString("hex")), -1, `${file} contains the key in hex`)
        assert.strictEqual(bytes.indexOf(Buffer.from(KEY).toString("base64")), -1, `${file} contains the key in base64`)
      }
    }))

  const tamperings: ReadonlyArray<
    readonly [string, (directory: string, row: { key: string; checksum: string; blobId: string | null }) => void]
  > = [
    ["altered stored bytes", (directory, row) => {
      if (row.blobId === null) {
        sql(
          directory,
          "UPDATE cacheness_entries SET inline_value = ? WHERE key = ?",
          Buffer.from([0xca, 0xc5, 1, 0, 2, 0x76, 0x38, 1, 0]),
          row.key
        )
        return
      }
      const file = blobPath(directory, row.blobId)
      const bytes = fs.readFileSync(file)
      bytes[bytes.length - 3] ^= 0x10
      fs.writeFileSync(file, bytes)
    }],
    ["the signature replaced by a plain checksum", (directory, row) => {
      // A forger without the key can only write what an unsigned cache would.
      sql(directory, "UPDATE cacheness_entries SET checksum = ? WHERE key = ?", "0123456789abcdef", row.key)
    }],
    ["another entry's signed bytes replayed under this key", (directory, row) => {
      const all = rows(directory)
      const other = all.find((r) => r.key !== row.key && (r.blobId === null) === (row.blobId === null))!
      sql(
        directory,
        "UPDATE cacheness_entries SET checksum = (SELECT checksum FROM cacheness_entries WHERE key = ?), inline_value = (SELECT inline_value FROM cacheness_entries WHERE key = ?), stored_bytes = (SELECT stored_bytes FROM cacheness_entries WHERE key = ?), blob_id = (SELECT blob_id FROM cacheness_entries WHERE key = ?) WHERE key = ?",
        other.key,
        other.key,
        other.key,
        other.key,
        row.key
      )
    }]
  ]

  for (const [name, tamper] of tamperings) {
    for (const kind of ["inline", "blob"] as const) {
      it.scoped(`${name} (${kind}): a miss, the entry removed, a warning`, () =>
        Effect.gen(function*() {
          const directory = yield* tempDir
          const value = (i: number) => kind === "inline" ? { i, small } : `${i}:${large}`
          yield* withCache(
            directory,
            { signing: { key: KEY } },
            Effect.gen(function*() {
              const cache = yield* Cache.Cache
              yield* cache.put({ k: "victim" }, value(1))
              yield* cache.put({ k: "other" }, value(2))
            })
          )
          const victimKey = (yield* withCache(
            directory,
            {},
            Effect.flatMap(Cache.Cache, (c) => c.key({ k: "victim" }))
          )).result
          tamper(directory, rows(directory).find((r) => r.key === victimKey)!)
          const { result, warnings } = yield* withCache(
            directory,
            { signing: { key: KEY } },
            Effect.gen(function*() {
              const cache = yield* Cache.Cache
              return [yield* cache.get({ k: "victim" }), yield* cache.has({ k: "victim" })] as const
            })
          )
          assert.isTrue(Option.isNone(result[0]), "tampered entry is not served")
          assert.isFalse(result[1], "tampered entry removed")
          assert.strictEqual(
            warnings.filter((w) => w.includes(victimKey) && w.includes("removed")).length,
            1,
            warnings.join("\n")
          )
        }))
    }
  }

  it.scoped("an entry signed with another key is rejected; an unsigned cache neither serves nor removes signed entries", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* withCache(
        directory,
        { signing: { key: KEY } },
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ k: 1 }, small)
          yield* cache.put({ k: 2 }, large)
        })
      )
      const unsigned = yield* withCache(
        directory,
        {},
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          return [yield* cache.get({ k: 1 }), yield* cache.get({ k: 2 }), yield* cache.verify()] as const
        })
      )
      assert.isTrue(Option.isNone(unsigned.result[0]) && Option.isNone(unsigned.result[1]))
      assert.deepStrictEqual(unsigned.result[2].checksumMismatches, [], "unverifiable, not broken")
      assert.strictEqual(rows(directory).length, 2, "kept for caches that hold the key")

      const other = yield* withCache(
        directory,
        { signing: { key: "another key" } },
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const report = yield* cache.verify()
          return [report, yield* cache.get({ k: 1 }), yield* cache.get({ k: 2 })] as const
        })
      )
      assert.strictEqual(other.result[0].checksumMismatches.length, 2, "verify with another key flags both")
      assert.isTrue(Option.isNone(other.result[1]) && Option.isNone(other.result[2]))
      assert.strictEqual(other.warnings.filter((w) => w.includes("signature")).length, 2)
      assert.strictEqual(rows(directory).length, 0)
    }))

  it.scoped("unsigned entries are rejected once a key is configured", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* withCache(directory, {}, Effect.flatMap(Cache.Cache, (c) => c.put({ k: 1 }, small)))
      const { result, warnings } = yield* withCache(
        directory,
        { signing: { key: KEY } },
        Effect.flatMap(Cache.Cache, (c) => c.get({ k: 1 }))
      )
      assert.isTrue(Option.isNone(result))
      assert.isTrue(warnings.some((w) => w.includes("is not signed")))
    }))

  it.scoped("an entry a release before grace signed (hmac-sha256-v2) still verifies; moved into a grace, it does not", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const config = { signing: { key: KEY } }
      yield* withCache(directory, config, Effect.flatMap(Cache.Cache, (c) => c.put({ k: 1 }, small, { ttl: "1 hour" })))
      // The v2 scheme written out from its description (signing.ts), independently of the code:
      // domain tag, then each field type-tagged and length-prefixed, then stored length and bytes.
      const db = new Database(path.join(directory, "cacheness.db"))
      const row = db.prepare(
        `SELECT key, namespace, description, format, codec, stored_bytes AS storedBytes, raw_bytes AS rawBytes,
          expires_at AS expiresAt, params, metadata, inline_value AS bytes FROM cacheness_entries`
      ).get() as Record<string, string | number | null> & { bytes: Buffer }
      db.close()
      const hmac = crypto.createHmac("sha256", KEY).update("cacheness-entry-v2\0")
      for (
        const name of [
          "key",
          "namespace",
          "description",
          "format",
          "codec",
          "storedBytes",
          "rawBytes",
          "expiresAt",
          "params",
          "metadata"
        ]
      ) {
        const value = row[name]
        if (value === null) {
          hmac.update(Buffer.from([0]))
          continue
        }
        const text = Buffer.from(typeof value === "number" ? `n${value}` : `s${value}`, "utf8")
        const length = Buffer.alloc(9)
        length[0] = 1
        length.writeBigUInt64BE(BigInt(text.length), 1)
        hmac.update(length).update(text)
      }
      const stored = Buffer.alloc(8)
      stored.writeBigUInt64BE(BigInt(row.bytes.length))
      const v2 = "hmac-sha256-v2:" + hmac.update(stored).update(row.bytes).digest("hex")
      sql(directory, "UPDATE cacheness_entries SET checksum = ?", v2)

      const read = (c: Cache.CacheConfig) =>
        withCache(directory, c, Effect.flatMap(Cache.Cache, (cache) => cache.get({ k: 1 })))
      assert.deepStrictEqual(
        (yield* read(config)).result,
        Option.some(small),
        "a v2 signature of an entry without grace verifies"
      )
      // A v2 signature says nothing of grace: the same row with its grace moved out is refused.
      sql(directory, "UPDATE cacheness_entries SET stale_until = expires_at + 86400000")
      const refused = yield* read(config)
      assert.isTrue(Option.isNone(refused.result))
      assert.isTrue(refused.warnings.some((w) => w.includes("signature")), refused.warnings.join("; "))
    }))

  it.effect("an empty key is a ConfigError naming signing.key", () =>
    Effect.gen(function*() {
      for (const key of ["", new Uint8Array(0), Redacted.make(""), Redacted.make(42 as any)]) {
        const error = yield* Effect.flip(
          Effect.scoped(Effect.provide(Cache.Cache, Cache.layerMemory({ signing: { key } as any })))
        )
        assert.strictEqual(error._tag, "ConfigError")
        assert.include(error.message, "signing.key")
      }
    }))
})

describe("permissions: private", () => {
  it.scoped("directories are 0700 and files 0600", () =>
    Effect.gen(function*() {
      const directory = path.join(yield* tempDir, "cache")
      yield* withCache(
        directory,
        { permissions: "private" },
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ k: 1 }, small)
          yield* cache.put({ k: 2 }, large)
          const walk = (dir: string): Array<string> =>
            fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
              d.isDirectory() ? [path.join(dir, d.name), ...walk(path.join(dir, d.name))] : [path.join(dir, d.name)]
            )
          const modes = [directory, ...walk(directory)].map((p) =>
            [path.relative(directory, p), fs.statSync(p).mode & 0o777] as const
          )
          assert.isTrue(modes.some(([p]) => p.endsWith("-wal")), "checked while the WAL exists")
          for (const [p, mode] of modes) {
            const isDir = fs.statSync(path.join(directory, p)).isDirectory()
            assert.strictEqual(mode, isDir ? 0o700 : 0o600, `${p || "."} is ${mode.toString(8)}`)
          }
        })
      )
    }))
})
