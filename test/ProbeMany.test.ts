// SQLite's `probeMany` reads a batch as one packed answer (a JSON text and one BLOB of the inline
// values): it must answer exactly what `probe` answers for each key — across statements of 1,000
// keys, for blob entries, empty and binary inline values, absent and repeated keys, and for
// damaged rows, which it probes alone (their neighbours' values must not shift).
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { MetadataStore } from "../src/metadata/service.js"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { key, record } from "../src/testing/MetadataStoreSuite.js"
import { makeTempDir } from "./support/tmp.js"

/** A store on a fresh file, and a plain connection to the same file for damaging rows. */
const withStore = <A, E>(use: (filename: string) => Effect.Effect<A, E, MetadataStore>) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(makeTempDir),
      (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
    )
    const filename = path.join(dir, "cache.db")
    return yield* Effect.provide(use(filename), MetadataStoreSqlite.layer({ filename }))
  })

/** `probe` of each key, as `probeMany` must answer them (inline bytes as plain arrays). */
const probedOneByOne = (store: MetadataStore.Service, keys: ReadonlyArray<string>) =>
  Effect.map(Effect.forEach(keys, (k) => store.probe(k)), plain)

const plain = (found: ReadonlyArray<Option.Option<unknown>>) =>
  found.map(
    Option.map((r: any) => ({ ...r, inline: r.inline instanceof Uint8Array ? Array.from(r.inline) : r.inline }))
  )

/** Bytes 0–255 in a pattern of `length`, so a shifted slice differs. */
const bytesOf = (seed: number, length: number) => Uint8Array.from({ length }, (_, i) => (seed * 31 + i * 7) % 256)

describe("MetadataStoreSqlite probeMany", () => {
  it.scoped("answers what probe answers for every key, across statements of 1,000 keys", () =>
    withStore(() =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const stored = Array.from({ length: 2_400 }, (_, i) => key(i))
        for (let i = 0; i < stored.length; i++) {
          yield* store.upsert(
            i % 5 === 0
              ? record(stored[i], { blobId: `${stored[i]}-b`, inline: null, storedBytes: 20_000 + i })
              : record(stored[i], {
                inline: bytesOf(i, i % 7 === 0 ? 0 : 1 + (i % 300)),
                storedBytes: i % 7 === 0 ? 0 : 1 + (i % 300),
                checksum: `${i}`.padStart(16, "0"),
                expiresAt: i % 3 === 0 ? null : 5_000 + i,
                staleUntil: i % 6 === 1 ? 9_000 + i : null
              })
          )
        }
        // Every stored key (in another order), absent keys among them, and repeats.
        const asked = [
          ...stored.map((_, i) => stored[(i * 17) % stored.length]),
          ...Array.from({ length: 150 }, (_, i) => key(50_000 + i)),
          stored[3],
          stored[0],
          stored[3]
        ].sort((a, b) => (a < b ? -1 : 1)).reverse()
        const probed = yield* store.probeMany(asked)
        assert.strictEqual(probed.length, asked.length)
        assert.deepStrictEqual(plain(probed), yield* probedOneByOne(store, asked))
        assert.strictEqual(probed.filter(Option.isNone).length, 150)
      })
    ))

  it.scoped("damaged rows are answered as probe answers them, their neighbours intact", () =>
    withStore((filename) =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const keys = Array.from({ length: 24 }, (_, i) => key(i))
        for (let i = 0; i < keys.length; i++) {
          yield* store.upsert(record(keys[i], { inline: bytesOf(i, 40 + i), storedBytes: 40 + i }))
        }
        const db = new Database(filename)
        try {
          const damage = (column: string, value: unknown, k: string) =>
            db.prepare(`UPDATE cacheness_entries SET ${column} = ? WHERE key = ?`).run(value, k)
          damage("inline_value", "not bytes, text", keys[2])
          damage("inline_value", 12345, keys[5])
          damage("inline_value", 1.5, keys[6])
          damage("inline_value", null, keys[8])
          // A BLOB that does not read as JSONB fails the packed statement (the rows answer) ...
          damage("checksum", Buffer.from([0x00, 0xff]), keys[11])
        } finally {
          db.close()
        }
        assert.deepStrictEqual(plain(yield* store.probeMany(keys)), yield* probedOneByOne(store, keys))
        const db2 = new Database(filename)
        try {
          const damage = (column: string, value: unknown, k: string) =>
            db2.prepare(`UPDATE cacheness_entries SET ${column} = ? WHERE key = ?`).run(value, k)
          damage("checksum", "00000000000000aa", keys[11])
          // ... one that does (X'00' is JSONB null) would be read as JSON: such rows are probed alone.
          damage("expires_at", Buffer.from([0x00]), keys[12])
          damage("checksum", Buffer.from([0x00]), keys[14])
          damage("stored_bytes", Buffer.from([0x00]), keys[15])
          damage("blob_id", Buffer.from([0x00]), keys[17])
          damage("stale_until", Buffer.from([0x00]), keys[19])
        } finally {
          db2.close()
        }
        const probed = yield* store.probeMany(keys)
        assert.deepStrictEqual(plain(probed), yield* probedOneByOne(store, keys))
        assert.instanceOf(Option.getOrThrow(probed[12]).expiresAt, Uint8Array)
        assert.deepStrictEqual(Array.from(Option.getOrThrow(probed[23]).inline!), Array.from(bytesOf(23, 63)))
      })
    ))
})
