/**
 * `BlobStore` on PostgreSQL: values as BYTEA, so a cache can live entirely in one database and be
 * shared by many machines.
 *
 * A blob is a head row (id, size, chunk count) plus its chunks (`chunkSize` bytes each, 1 MiB by
 * default): one huge BYTEA would be built, escaped and buffered whole by the driver and the server,
 * and PostgreSQL caps a field at 1 GB. A put writes head and chunks in one transaction, so a reader
 * sees no blob or the whole blob; chunks go with their head by a cascading foreign key.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { ConfigError } from "../errors.js"
import * as PgPool from "../shared/pgClient.js"
import { retryRead } from "../shared/pgRetry.js"
import { transaction } from "../shared/pgTransaction.js"
import { validateId } from "./blobId.js"
import { BlobStore, make as makeBlobStore, StorageError } from "./service.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PgBlobOptions {
  readonly url: string | Redacted.Redacted<string>
  /** Schema holding the blob tables, created when missing. Default `public`. */
  readonly schema?: string | undefined
  /** Bytes per chunk. Default 1 MiB. */
  readonly chunkSize?: number | undefined
  /** Connections this store may use at once. Default 4. A pool shared with other stores on the URL takes the largest request. */
  readonly maxConnections?: number | undefined
  readonly idleTimeout?: Duration.DurationInput | undefined
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/**
 * The newest blob layout this code knows.
 *
 * @since 0.1.0
 * @category constants
 */
export const LAYOUT_VERSION = 1

const migrations = (s: string): Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> => ({
  "1_blobs": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${s}.cacheness_blobs (
      id TEXT PRIMARY KEY, size BIGINT NOT NULL, chunks INTEGER NOT NULL)`)
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${s}.cacheness_blob_chunks (
      id TEXT NOT NULL REFERENCES ${s}.cacheness_blobs(id) ON DELETE CASCADE,
      n INTEGER NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (id, n))`)
    // Chunks are already compressed by the codec: storing them EXTERNAL skips a useless pglz pass.
    yield* sql.unsafe(`ALTER TABLE ${s}.cacheness_blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL`)
  })
})

const describe = (cause: unknown): string => {
  const inner = typeof cause === "object" && cause !== null && "cause" in cause ? (cause as any).cause : undefined
  const outer = cause instanceof Error ? cause.message : String(cause)
  return inner instanceof Error && inner.message !== outer ? `${outer}: ${inner.message}` : outer
}

const fail = (method: string, reason: StorageError["reason"], id: string | undefined, cause: unknown) =>
  new StorageError({ method, reason, id, description: describe(cause), cause })

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: PgBlobOptions
): Effect.Effect<BlobStore.Service, StorageError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const schema = options.schema ?? "public"
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
      return yield* new StorageError({
        method: "BlobStorePg.open",
        reason: "WriteFailed",
        description: `schema ${JSON.stringify(schema)} must be a plain identifier`
      })
    }
    const s = schema.toLowerCase()
    const chunkSize = Math.max(1024, Math.floor(options.chunkSize ?? 1024 * 1024))
    const url = typeof options.url === "string" ? Redacted.make(options.url) : options.url
    // Shared with the metadata store on the same URL: one pool per cache.
    const sql = yield* PgPool.acquire({
      url,
      maxConnections: options.maxConnections ?? 4,
      idleTimeout: options.idleTimeout,
      connectTimeout: options.connectTimeout
    }).pipe(
      Effect.catchTag("SqlError", (cause) => Effect.fail(fail("BlobStorePg.open", "ReadFailed", undefined, cause)))
    )
    yield* transaction(
      sql,
      Effect.gen(function*() {
        yield* sql.unsafe(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`cacheness:${s}`])
        yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${s}`)
        yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${s}.cacheness_blob_migrations (
        migration_id integer primary key, created_at timestamp with time zone not null default now(), name text not null)`)
        yield* Migrator.make({})({
          loader: Migrator.fromRecord(migrations(s)),
          table: `${s}.cacheness_blob_migrations`
        })
        const [{ version }] = yield* sql.unsafe<{ version: number | null }>(
          `SELECT max(migration_id) AS version FROM ${s}.cacheness_blob_migrations`
        )
        if ((version ?? 0) > LAYOUT_VERSION) {
          return yield* new StorageError({
            method: "BlobStorePg.open",
            reason: "ReadFailed",
            description: `schema ${s} has blob layout ${version}; this release reads up to ${LAYOUT_VERSION}`
          })
        }
      })
    ).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.catchIf(
        (e): e is Exclude<typeof e, StorageError> => !(e instanceof StorageError),
        (cause) => Effect.fail(fail("BlobStorePg.open", "WriteFailed", undefined, cause))
      ),
      // The Migrator turns a failing migration into a defect (`orDieWith`): typed here.
      Effect.catchSomeDefect((defect) =>
        defect instanceof Migrator.MigrationError
          ? Option.some(Effect.fail(fail("BlobStorePg.open", "WriteFailed", undefined, defect)))
          : Option.none()
      )
    )

    const B = `${s}.cacheness_blobs`
    const K = `${s}.cacheness_blob_chunks`

    return makeBlobStore({
      backend: "postgres",
      location: null,
      put: (id, bytes) =>
        Effect.zipRight(
          validateId(id, "BlobStore.put"),
          Effect.suspend(() => {
            const chunks = Math.ceil(bytes.byteLength / chunkSize)
            // Copies: the caller may reuse its array once put returns, while the driver still holds it.
            const chunk = (n: number) =>
              Buffer.from(bytes.subarray(n * chunkSize, Math.min(bytes.byteLength, (n + 1) * chunkSize)))
            return transaction(
              sql,
              Effect.gen(function*() {
                // Deleting the head drops the previous version's chunks (cascade) before writing anew.
                yield* sql.unsafe(`DELETE FROM ${B} WHERE id = $1`, [id])
                yield* sql.unsafe(`INSERT INTO ${B} (id, size, chunks) VALUES ($1, $2, $3)`, [
                  id,
                  bytes.byteLength,
                  chunks
                ])
                for (let n = 0; n < chunks; n++) {
                  yield* sql.unsafe(`INSERT INTO ${K} (id, n, data) VALUES ($1, $2, $3)`, [id, n, chunk(n)])
                }
              })
            )
          }).pipe(Effect.mapError((cause) => fail("BlobStore.put", "WriteFailed", id, cause)))
        ),
      get: (id) =>
        Effect.zipRight(
          validateId(id, "BlobStore.get"),
          // One statement, one snapshot: head and chunks are of the same version.
          sql.unsafe<{ size: number; chunks: number; n: number | null; data: Uint8Array | null }>(
            `SELECT b.size::float8 AS size, b.chunks, c.n, c.data FROM ${B} b LEFT JOIN ${K} c ON c.id = b.id
             WHERE b.id = $1 ORDER BY c.n`,
            [id]
          ).pipe(
            // The same retry as metadata reads: a dead pooled connection costs a retry, not the read.
            retryRead,
            Effect.flatMap((rows) => {
              if (rows.length === 0) return Effect.succeed(Option.none<Uint8Array>())
              const { chunks, size } = rows[0]
              const parts = rows.filter((r) => r.data !== null)
              if (parts.length !== chunks) {
                return Effect.fail(
                  new StorageError({
                    method: "BlobStore.get",
                    reason: "ReadFailed",
                    id,
                    description: `blob has ${parts.length} of ${chunks} chunks`
                  })
                )
              }
              const out = new Uint8Array(size)
              let offset = 0
              for (const part of parts) {
                out.set(part.data!, offset)
                offset += part.data!.byteLength
              }
              return Effect.succeed(Option.some(out))
            }),
            Effect.mapError((cause) =>
              cause instanceof StorageError ? cause : fail("BlobStore.get", "ReadFailed", id, cause)
            )
          )
        ),
      delete: (id) =>
        Effect.zipRight(
          validateId(id, "BlobStore.delete"),
          sql.unsafe(`DELETE FROM ${B} WHERE id = $1 RETURNING 1 AS one`, [id]).pipe(
            Effect.map((rows) => rows.length > 0),
            Effect.mapError((cause) => fail("BlobStore.delete", "DeleteFailed", id, cause))
          )
        ),
      has: (id) =>
        Effect.zipRight(
          validateId(id, "BlobStore.has"),
          sql.unsafe(`SELECT 1 AS one FROM ${B} WHERE id = $1`, [id]).pipe(
            retryRead,
            Effect.map((rows) => rows.length > 0),
            Effect.mapError((cause) => fail("BlobStore.has", "ReadFailed", id, cause))
          )
        ),
      list: sql.unsafe<{ id: string }>(`SELECT id FROM ${B}`).pipe(
        retryRead,
        Effect.map((rows) => rows.map((r) => r.id)),
        Effect.mapError((cause) => fail("BlobStore.list", "ListFailed", undefined, cause))
      ),
      clear: sql.unsafe(`DELETE FROM ${B} RETURNING 1 AS one`).pipe(
        Effect.map((rows) => rows.length),
        Effect.mapError((cause) => fail("BlobStore.clear", "DeleteFailed", undefined, cause))
      )
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: PgBlobOptions): Layer.Layer<BlobStore, StorageError | ConfigError> =>
  Layer.scoped(BlobStore, make(options))
