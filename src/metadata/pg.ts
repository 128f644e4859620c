/**
 * The PostgreSQL metadata store: one cache shared by many processes on many machines.
 *
 * Through `@effect/sql-pg`. The layout lives in a configurable schema (several caches can share
 * one database) and is created and upgraded by the `@effect/sql` Migrator, serialised across
 * processes by an advisory lock. Entry count and total size are kept exact in a one-row counters
 * table by statement-level triggers, so `stats` and the size check read one row. Hits and access
 * times are batched in memory and written once per `flushInterval` (and before aggregate queries
 * and on close), as in the SQLite store.
 *
 * Times and sizes are BIGINT columns read back as float8: epoch milliseconds and byte counts fit
 * exactly in a double, and node-postgres would otherwise return BIGINT as strings.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { ConfigError } from "../errors.js"
import { daemonClock, flushBeforeExit } from "../shared/daemonClock.js"
import * as NamespaceKey from "../shared/namespaceKey.js"
import * as PgPool from "../shared/pgClient.js"
import { pgCode, retryConflict, retryRead } from "../shared/pgRetry.js"
import { transaction } from "../shared/pgTransaction.js"
import { AccessBatch } from "./accessBatch.js"
import { upsertValues } from "./entries.js"
import { make as makeMetadataStore } from "./make.js"
import * as PgChanges from "./pgChanges.js"
import type {
  EntryFilter,
  EntryOrder,
  EntryRecord,
  PathFingerprint,
  RemovedRef,
  StoredValue,
  TableDefinition,
  TableMatch,
  TableRow,
  Totals,
  UpsertItem
} from "./service.js"
import { MetadataError, MetadataStore } from "./service.js"
import * as TableSql from "./tablesSql.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PgStoreOptions {
  /** `postgres://user:pass@host:5432/db`; a `Redacted` keeps the password out of logs. */
  readonly url: string | Redacted.Redacted<string>
  /** Schema holding the cache's tables, created when missing. Default `public`. */
  readonly schema?: string | undefined
  /** Connections this store may use at once. Default 10. A pool shared with other stores on the URL takes the largest request. */
  readonly maxConnections?: number | undefined
  readonly minConnections?: number | undefined
  /** How long an idle pooled connection is kept. Default 30 seconds. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** How long connecting may take. Default 10 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Connections are replaced after this long. */
  readonly connectionTTL?: Duration.DurationInput | undefined
  /** How often batched hits and access times are written. Default 1 second. */
  readonly flushInterval?: Duration.DurationInput | undefined
  /** Custom metadata tables, created when missing. */
  readonly tables?: ReadonlyArray<TableDefinition> | undefined
  /**
   * Keep one more connection that LISTENs for the change notifications every writer's triggers
   * send, so `changeCount` answers synchronously (for a memory tier and `cached`'s memo). Default
   * false: `changeCount` is `NotSync` and memory is never trusted. `Cache.layer` turns it on with
   * a `memory` tier.
   */
  readonly changeNotifications?: boolean | undefined
}

/**
 * The newest layout this code knows. A schema migrated further by a newer release is refused.
 *
 * @since 0.1.0
 * @category constants
 */
export const LAYOUT_VERSION = 8

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/** The layout, as Migrator migrations on the schema `s` (already validated). */
const migrations = (s: string): Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> => ({
  "1_entries": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${s}.cacheness_entries (
      key TEXT PRIMARY KEY,
      namespace TEXT NOT NULL DEFAULT '',
      description TEXT,
      format TEXT NOT NULL,
      codec TEXT NOT NULL,
      stored_bytes BIGINT NOT NULL,
      raw_bytes BIGINT NOT NULL,
      checksum TEXT NOT NULL,
      blob_id TEXT,
      inline_value BYTEA,
      created_at BIGINT NOT NULL,
      accessed_at BIGINT NOT NULL,
      expires_at BIGINT,
      hits BIGINT NOT NULL DEFAULT 0,
      params TEXT,
      metadata TEXT
    )`)
    yield* sql.unsafe(
      `CREATE INDEX IF NOT EXISTS cacheness_entries_expires ON ${s}.cacheness_entries (expires_at) WHERE expires_at IS NOT NULL`
    )
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${s}.cacheness_counters (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      entries BIGINT NOT NULL, bytes BIGINT NOT NULL, hits BIGINT NOT NULL, misses BIGINT NOT NULL
    )`)
    yield* sql.unsafe(`INSERT INTO ${s}.cacheness_counters VALUES (1, 0, 0, 0, 0) ON CONFLICT DO NOTHING`)
    // Statement-level triggers with transition tables: a DELETE of 10,000 rows updates the
    // counters row once, not 10,000 times.
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION ${s}.cacheness_count_insert() RETURNS trigger AS $$
      BEGIN
        UPDATE ${s}.cacheness_counters SET entries = entries + (SELECT count(*) FROM new_rows),
          bytes = bytes + (SELECT coalesce(sum(stored_bytes), 0) FROM new_rows) WHERE id = 1;
        RETURN NULL;
      END $$ LANGUAGE plpgsql`)
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION ${s}.cacheness_count_delete() RETURNS trigger AS $$
      BEGIN
        UPDATE ${s}.cacheness_counters SET entries = entries - (SELECT count(*) FROM old_rows),
          bytes = bytes - (SELECT coalesce(sum(stored_bytes), 0) FROM old_rows) WHERE id = 1;
        RETURN NULL;
      END $$ LANGUAGE plpgsql`)
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION ${s}.cacheness_count_update() RETURNS trigger AS $$
      DECLARE delta BIGINT;
      BEGIN
        SELECT coalesce(sum(stored_bytes), 0) - (SELECT coalesce(sum(stored_bytes), 0) FROM old_rows) INTO delta FROM new_rows;
        IF delta <> 0 THEN UPDATE ${s}.cacheness_counters SET bytes = bytes + delta WHERE id = 1; END IF;
        RETURN NULL;
      END $$ LANGUAGE plpgsql`)
    yield* sql.unsafe(`CREATE TRIGGER cacheness_count_insert AFTER INSERT ON ${s}.cacheness_entries
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ${s}.cacheness_count_insert()`)
    yield* sql.unsafe(`CREATE TRIGGER cacheness_count_delete AFTER DELETE ON ${s}.cacheness_entries
      REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ${s}.cacheness_count_delete()`)
    yield* sql.unsafe(`CREATE TRIGGER cacheness_count_update AFTER UPDATE ON ${s}.cacheness_entries
      REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ${s}.cacheness_count_update()`)
  }),
  // Stat fingerprints of files hashed as key params (see PathFingerprint): one row per path.
  "2_fingerprints": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${s}.cacheness_fingerprints (
      path TEXT COLLATE "C" PRIMARY KEY, stat TEXT NOT NULL, hash TEXT NOT NULL)`)
  }),
  // Leases: processes (on any machine) sharing the cache compute a memoised value once. One row
  // per key being computed, taken over by anyone once `expires_at` has passed (a crashed holder).
  "3_leases": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${s}.cacheness_leases (
      key TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at BIGINT NOT NULL)`)
  }),
  // Namespaces become part of an entry's identity (`shared/namespaceKey.ts`): rows outside the
  // default namespace are rekeyed, with their custom metadata rows (whose foreign keys are lifted
  // for the update and put back); an insertion sequence orders listings (existing rows numbered
  // by creation time; an upsert's DO UPDATE keeps a row's number); entries and bytes are counted
  // per namespace (other than the default, which is the whole cache's count minus theirs) by
  // statement-level triggers, like the whole cache's.
  "4_namespaces": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const E = `${s}.cacheness_entries`
    const N = `${s}.cacheness_namespace_counters`
    const derive = yield* NamespaceKey.load
    const rows = yield* sql.unsafe<{ readonly key: string; readonly namespace: string; readonly checksum: string }>(
      `SELECT key, namespace, checksum FROM ${E} WHERE namespace <> ''`
    )
    if (rows.length > 0) {
      const foreign = yield* sql.unsafe<{ readonly child: string; readonly name: string }>(
        `SELECT conrelid::regclass::text AS child, conname AS name FROM pg_constraint
         WHERE contype = 'f' AND confrelid = '${E}'::regclass`
      )
      for (const f of foreign) yield* sql.unsafe(`ALTER TABLE ${f.child} DROP CONSTRAINT "${f.name}"`)
      const olds = rows.map((r) => r.key)
      const news = rows.map((r) => derive(r.namespace, r.key))
      const sums = rows.map((r, i) => NamespaceKey.rebindChecksum(r.checksum, r.key, news[i]))
      const mapping = `(SELECT unnest($1::text[]) AS old, unnest($2::text[]) AS new)`
      yield* sql.unsafe(
        `UPDATE ${E} e SET key = m.new, checksum = m.sum
         FROM (SELECT unnest($1::text[]) AS old, unnest($2::text[]) AS new, unnest($3::text[]) AS sum) m
         WHERE e.key = m.old`,
        [olds, news, sums]
      )
      for (const f of foreign) {
        yield* sql.unsafe(
          `UPDATE ${f.child} t SET cache_key = m.new FROM ${mapping} m WHERE t.cache_key = m.old`,
          [olds, news]
        )
        yield* sql.unsafe(`ALTER TABLE ${f.child} ADD CONSTRAINT "${f.name}"
          FOREIGN KEY (cache_key) REFERENCES ${E}(key) ON DELETE CASCADE`)
      }
    }
    yield* sql.unsafe(`ALTER TABLE ${E} ADD COLUMN IF NOT EXISTS seq BIGINT`)
    yield* sql.unsafe(`UPDATE ${E} e SET seq = r.n FROM
      (SELECT key, row_number() OVER (ORDER BY created_at, key) AS n FROM ${E}) r WHERE e.key = r.key`)
    yield* sql.unsafe(`CREATE SEQUENCE IF NOT EXISTS ${s}.cacheness_entries_seq OWNED BY ${E}.seq`)
    yield* sql.unsafe(
      `SELECT setval('${s}.cacheness_entries_seq', coalesce((SELECT max(seq) FROM ${E}), 0) + 1, false)`
    )
    yield* sql.unsafe(
      `ALTER TABLE ${E} ALTER COLUMN seq SET DEFAULT nextval('${s}.cacheness_entries_seq'), ALTER COLUMN seq SET NOT NULL`
    )
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${N} (
      namespace TEXT PRIMARY KEY, entries BIGINT NOT NULL, bytes BIGINT NOT NULL)`)
    yield* sql.unsafe(`INSERT INTO ${N} (namespace, entries, bytes)
      SELECT namespace, count(*), coalesce(sum(stored_bytes), 0) FROM ${E} WHERE namespace <> '' GROUP BY namespace
      ON CONFLICT (namespace) DO UPDATE SET entries = excluded.entries, bytes = excluded.bytes`)
    // Rows going in and rows going out, by namespace; the default namespace is not counted here.
    const add = (rows: string) =>
      `INSERT INTO ${N} (namespace, entries, bytes)
        SELECT namespace, count(*), coalesce(sum(stored_bytes), 0) FROM ${rows} WHERE namespace <> '' GROUP BY namespace
        ON CONFLICT (namespace) DO UPDATE SET entries = ${N}.entries + excluded.entries, bytes = ${N}.bytes + excluded.bytes;`
    const subtract = (rows: string) =>
      `UPDATE ${N} c SET entries = c.entries - d.n, bytes = c.bytes - d.b
        FROM (SELECT namespace, count(*) AS n, coalesce(sum(stored_bytes), 0) AS b FROM ${rows}
          WHERE namespace <> '' GROUP BY namespace) d WHERE c.namespace = d.namespace;
        DELETE FROM ${N} WHERE entries <= 0;`
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION ${s}.cacheness_ns_insert() RETURNS trigger AS $$
      BEGIN ${add("new_rows")} RETURN NULL; END $$ LANGUAGE plpgsql`)
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION ${s}.cacheness_ns_delete() RETURNS trigger AS $$
      BEGIN ${subtract("old_rows")} RETURN NULL; END $$ LANGUAGE plpgsql`)
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION ${s}.cacheness_ns_update() RETURNS trigger AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM old_rows WHERE namespace <> '') OR EXISTS (SELECT 1 FROM new_rows WHERE namespace <> '') THEN
          ${subtract("old_rows")} ${add("new_rows")}
        END IF;
        RETURN NULL;
      END $$ LANGUAGE plpgsql`)
    yield* sql.unsafe(`CREATE TRIGGER cacheness_ns_insert AFTER INSERT ON ${E}
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ${s}.cacheness_ns_insert()`)
    yield* sql.unsafe(`CREATE TRIGGER cacheness_ns_delete AFTER DELETE ON ${E}
      REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ${s}.cacheness_ns_delete()`)
    yield* sql.unsafe(`CREATE TRIGGER cacheness_ns_update AFTER UPDATE ON ${E}
      REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ${s}.cacheness_ns_update()`)
    // Listing, clearing or invalidating one namespace reads its rows only; partial, so default
    // namespace puts do not maintain it (queries add `namespace <> ''` so the planner may use it).
    yield* sql.unsafe(
      `CREATE INDEX IF NOT EXISTS cacheness_entries_namespace ON ${E} (namespace) WHERE namespace <> ''`
    )
  }),
  // Grace (stale-while-revalidate, stale-if-error): until when an expired entry may still be
  // served stale. Existing entries get none (stale_until = expires_at). Cleanup keeps using the
  // expiry index (stale_until >= expires_at), so puts pay for no second index.
  "5_stale_until": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`ALTER TABLE ${s}.cacheness_entries ADD COLUMN IF NOT EXISTS stale_until BIGINT`)
    yield* sql.unsafe(`UPDATE ${s}.cacheness_entries SET stale_until = expires_at WHERE stale_until IS NULL`)
  }),
  // Tags: the entry's tags as an array beside the row (read with it, no join), and the tag index
  // (tag, key) that `invalidateTags` and `list({ tag })` walk; its rows go with their entry
  // (ON DELETE CASCADE, through the index on key).
  "6_tags": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`ALTER TABLE ${s}.cacheness_entries ADD COLUMN IF NOT EXISTS tags TEXT[]`)
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${s}.cacheness_tags (
      tag TEXT NOT NULL,
      key TEXT NOT NULL REFERENCES ${s}.cacheness_entries (key) ON DELETE CASCADE,
      PRIMARY KEY (tag, key))`)
    yield* sql.unsafe(`CREATE INDEX IF NOT EXISTS cacheness_tags_key ON ${s}.cacheness_tags (key)`)
  }),
  // Change notifications (memory tier, see metadata/pgChanges.ts): every statement that inserts
  // or deletes entries (or truncates), and every update that changes what a read serves (a new
  // version, a new expiry), NOTIFYs the listeners of this schema. PostgreSQL folds identical
  // notifications of one transaction into one, so a clear of 10,000 rows sends one. Hit counts
  // and access times (the batched flush) change neither column and notify nobody.
  "7_change_notify": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION ${s}.cacheness_notify_change() RETURNS trigger AS $$
      BEGIN
        PERFORM pg_notify('${PgChanges.CHANNEL}', '${s}');
        RETURN NULL;
      END $$ LANGUAGE plpgsql`)
    yield* sql.unsafe(`DROP TRIGGER IF EXISTS cacheness_notify_change ON ${s}.cacheness_entries`)
    yield* sql.unsafe(`CREATE TRIGGER cacheness_notify_change AFTER INSERT OR DELETE OR TRUNCATE
      ON ${s}.cacheness_entries FOR EACH STATEMENT EXECUTE FUNCTION ${s}.cacheness_notify_change()`)
    yield* sql.unsafe(`DROP TRIGGER IF EXISTS cacheness_notify_update ON ${s}.cacheness_entries`)
    yield* sql.unsafe(`CREATE TRIGGER cacheness_notify_update AFTER UPDATE ON ${s}.cacheness_entries
      FOR EACH ROW WHEN (OLD.checksum IS DISTINCT FROM NEW.checksum OR OLD.blob_id IS DISTINCT FROM NEW.blob_id
        OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
        OR OLD.stale_until IS DISTINCT FROM NEW.stale_until)
      EXECUTE FUNCTION ${s}.cacheness_notify_change()`)
  }),
  // One trigger per event keeps both counters, always the totals row before the namespace rows
  // (in namespace order). Separate triggers had fired in name order, and for an upsert PostgreSQL
  // fires the UPDATE triggers before the INSERT ones: an overwrite locked its namespace row before
  // the totals row, a new entry the totals row first, and two such puts (or a put and an access
  // flush, whose update re-added every namespace row it touched) deadlocked. Updates that move no
  // bytes (hit counts, access times) now touch neither counter.
  "8_counter_order": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const C = `${s}.cacheness_counters`
    const N = `${s}.cacheness_namespace_counters`
    // `d` holds (namespace, entries, bytes) deltas; rows in namespace order, emptied ones dropped.
    const applyNamespaces = (d: string) =>
      `INSERT INTO ${N} (namespace, entries, bytes) SELECT namespace, n, b FROM (${d}) d
          WHERE n <> 0 OR b <> 0 ORDER BY namespace
        ON CONFLICT (namespace) DO UPDATE SET entries = ${N}.entries + excluded.entries, bytes = ${N}.bytes + excluded.bytes;
        DELETE FROM ${N} WHERE entries <= 0 AND namespace IN (SELECT namespace FROM (${d}) d WHERE n < 0);`
    const byNamespace = (rows: string, sign: string) =>
      `SELECT namespace, ${sign}count(*) AS n, ${sign}coalesce(sum(stored_bytes), 0) AS b FROM ${rows}
        WHERE namespace <> '' GROUP BY namespace`
    for (const name of ["count_insert", "count_delete", "count_update", "ns_insert", "ns_delete", "ns_update"]) {
      yield* sql.unsafe(`DROP TRIGGER IF EXISTS cacheness_${name} ON ${s}.cacheness_entries`)
      yield* sql.unsafe(`DROP FUNCTION IF EXISTS ${s}.cacheness_${name}()`)
    }
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION ${s}.cacheness_totals_insert() RETURNS trigger AS $$
      DECLARE added BIGINT; added_bytes BIGINT;
      BEGIN
        SELECT count(*), coalesce(sum(stored_bytes), 0) INTO added, added_bytes FROM new_rows;
        IF added = 0 THEN RETURN NULL; END IF;
        UPDATE ${C} SET entries = entries + added, bytes = bytes + added_bytes WHERE id = 1;
        ${applyNamespaces(byNamespace("new_rows", ""))}
        RETURN NULL;
      END $$ LANGUAGE plpgsql`)
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION ${s}.cacheness_totals_delete() RETURNS trigger AS $$
      DECLARE removed BIGINT; removed_bytes BIGINT;
      BEGIN
        SELECT count(*), coalesce(sum(stored_bytes), 0) INTO removed, removed_bytes FROM old_rows;
        IF removed = 0 THEN RETURN NULL; END IF;
        UPDATE ${C} SET entries = entries - removed, bytes = bytes - removed_bytes WHERE id = 1;
        ${applyNamespaces(byNamespace("old_rows", "-"))}
        RETURN NULL;
      END $$ LANGUAGE plpgsql`)
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION ${s}.cacheness_totals_update() RETURNS trigger AS $$
      DECLARE delta BIGINT;
      BEGIN
        SELECT coalesce(sum(stored_bytes), 0) - (SELECT coalesce(sum(stored_bytes), 0) FROM old_rows) INTO delta FROM new_rows;
        IF delta = 0 AND NOT EXISTS (SELECT 1 FROM old_rows o JOIN new_rows r USING (key)
          WHERE o.namespace <> r.namespace OR o.stored_bytes <> r.stored_bytes) THEN RETURN NULL; END IF;
        IF delta <> 0 THEN UPDATE ${C} SET bytes = bytes + delta WHERE id = 1; END IF;
        ${
      applyNamespaces(
        `SELECT namespace, sum(n) AS n, sum(b) AS b FROM (${byNamespace("old_rows", "-")} UNION ALL ${
          byNamespace("new_rows", "")
        }) x GROUP BY namespace`
      )
    }
        RETURN NULL;
      END $$ LANGUAGE plpgsql`)
    for (const event of ["insert", "delete", "update"] as const) {
      const tables = event === "insert"
        ? "NEW TABLE AS new_rows"
        : event === "delete"
        ? "OLD TABLE AS old_rows"
        : "OLD TABLE AS old_rows NEW TABLE AS new_rows"
      yield* sql.unsafe(`CREATE TRIGGER cacheness_totals_${event} AFTER ${event.toUpperCase()} ON ${s}.cacheness_entries
        REFERENCING ${tables} FOR EACH STATEMENT EXECUTE FUNCTION ${s}.cacheness_totals_${event}()`)
    }
  })
})

/** A row's tags as the store returns them: `undefined` when it has none (a NULL array). */
const withTags = <R extends { readonly tags?: unknown }>(rows: ReadonlyArray<R>): ReadonlyArray<R> => {
  for (const row of rows) if (row.tags === null) (row as { tags?: unknown }).tags = undefined
  return rows
}

/** Columns of an `EntryRecord` (without the inline value), aliased so a row is the record. */
const recordColumns = (alias: string) =>
  `${alias}key, ${alias}namespace, ${alias}description, ${alias}format, ${alias}codec,
  ${alias}stored_bytes::float8 AS "storedBytes", ${alias}raw_bytes::float8 AS "rawBytes", ${alias}checksum,
  ${alias}blob_id AS "blobId", ${alias}created_at::float8 AS "createdAt", ${alias}accessed_at::float8 AS "accessedAt",
  ${alias}expires_at::float8 AS "expiresAt", ${alias}hits::float8 AS hits, ${alias}params, ${alias}metadata,
  ${alias}stale_until::float8 AS "staleUntil", ${alias}tags`

const ORDER_COLUMNS: Record<EntryOrder, string> = {
  createdAt: "created_at",
  accessedAt: "accessed_at",
  expiresAt: "expires_at",
  storedBytes: "stored_bytes",
  hits: "hits",
  key: "key"
}

/** The parameters of one entry in an upsert (`upsertValues`). */
const UPSERT_PARAMS = 17
/** Entries per statement in `upsertMany`: 17 parameters each, well under PostgreSQL's 65,535. */
const UPSERT_CHUNK = 500

/** A touched entry's new `stale_until` (`$1` the new expiry): it keeps the grace it had. */
const TOUCHED_STALE_UNTIL = `CASE WHEN $1::bigint IS NULL THEN NULL
  ELSE $1::bigint + greatest(0, coalesce(stale_until - expires_at, 0)) END`

const REMOVED = `key, blob_id AS "blobId", stored_bytes::float8 AS "storedBytes"`

const describe = (cause: unknown): string => {
  const inner = typeof cause === "object" && cause !== null && "cause" in cause ? (cause as any).cause : undefined
  const outer = cause instanceof Error ? cause.message : String(cause)
  return inner instanceof Error && inner.message !== outer ? `${outer}: ${inner.message}` : outer
}

const fail = (method: string, reason: MetadataError["reason"], cause: unknown) =>
  new MetadataError({
    method,
    // serialization failure, deadlock, lock timeout: another process holds what we need
    reason: ["40001", "40P01", "55P03"].includes(pgCode(cause) ?? "")
      ? "Busy"
      : pgCode(cause) === "53100"
      ? "NoSpace"
      : reason,
    description: describe(cause),
    cause
  })

/**
 * Connects, creates or migrates the layout, and returns the store. Closing the scope flushes
 * batched access records and lets go of the pool (shared per URL, see shared/pgClient.ts).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: PgStoreOptions
): Effect.Effect<MetadataStore["Type"], MetadataError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const schema = options.schema ?? "public"
    if (!SCHEMA_NAME.test(schema)) {
      return yield* new MetadataError({
        method: "MetadataStorePg.open",
        reason: "OpenFailed",
        description: `schema ${JSON.stringify(schema)} must be a plain identifier (letters, digits, _)`
      })
    }
    // Unquoted everywhere, so PostgreSQL folds it to lower case consistently (the Migrator
    // resolves its table through ::regclass, which folds too).
    const s = schema.toLowerCase()
    const E = `${s}.cacheness_entries`
    const T = `${s}.cacheness_tags`
    const C = `${s}.cacheness_counters`
    const url = typeof options.url === "string" ? Redacted.make(options.url) : options.url
    // Shared with the blob store (and a pull-through cache) on the same URL: one pool per cache.
    const sql = yield* PgPool.acquire({
      url,
      maxConnections: options.maxConnections ?? 10,
      minConnections: options.minConnections,
      idleTimeout: options.idleTimeout,
      connectTimeout: options.connectTimeout,
      connectionTTL: options.connectionTTL
    }).pipe(Effect.catchTag("SqlError", (cause) => Effect.fail(fail("MetadataStorePg.open", "OpenFailed", cause))))

    const tables = new Map((options.tables ?? []).map((def) => [def.name, def]))
    const q = (name: string) => `${s}.${name}`

    // One process migrates at a time: the advisory lock is held until the transaction ends.
    const migrate = transaction(
      sql,
      Effect.gen(function*() {
        yield* sql.unsafe(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`cacheness:${s}`])
        yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${s}`)
        // Created here, under the lock: the Migrator's own probe-then-create races between processes.
        yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${s}.cacheness_migrations (
        migration_id integer primary key, created_at timestamp with time zone not null default now(), name text not null)`)
        yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations(s)), table: `${s}.cacheness_migrations` })
        const [{ version }] = yield* sql.unsafe<{ version: number | null }>(
          `SELECT max(migration_id) AS version FROM ${s}.cacheness_migrations`
        )
        if ((version ?? 0) > LAYOUT_VERSION) {
          return yield* new MetadataError({
            method: "MetadataStorePg.open",
            reason: "NewerLayout",
            description: `schema ${s} has metadata layout ${version}; this release reads up to ${LAYOUT_VERSION}`
          })
        }
        for (const def of tables.values()) {
          for (const statement of TableSql.createTable("pg", def, q, E)) yield* sql.unsafe(statement)
          const existing = new Set((yield* sql.unsafe<{ name: string }>(
            `SELECT column_name AS name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`,
            [s, def.name]
          )).map((c) => c.name))
          const missing = def.columns.filter((c) => !existing.has(c.name)).map((c) => c.name)
          if (missing.length > 0) {
            return yield* new MetadataError({
              method: "MetadataStorePg.open",
              reason: "MigrationFailed",
              description: `custom table ${s}.${def.name} exists without column(s) ${
                missing.join(", ")
              }; migrate or rename it`
            })
          }
        }
      })
    ).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.catchIf(
        (e): e is Exclude<typeof e, MetadataError> => !(e instanceof MetadataError),
        (cause) => Effect.fail(fail("MetadataStorePg.open", "MigrationFailed", cause))
      ),
      // The Migrator turns a failing migration into a defect (`orDieWith`): typed here.
      Effect.catchSomeDefect((defect) =>
        defect instanceof Migrator.MigrationError
          ? Option.some(Effect.fail(fail("MetadataStorePg.open", "MigrationFailed", defect)))
          : Option.none()
      )
    )
    // CREATE SCHEMA IF NOT EXISTS still races with a process not holding our lock (another tool
    // creating the same schema): a duplicate-object error is retried.
    yield* migrate.pipe(Effect.retry({
      times: 3,
      while: (e) => ["23505", "42P06", "42P07"].includes(pgCode(e.cause) ?? "")
    }))

    const accesses = new AccessBatch()
    // One flush at a time: a read that flushes first (totals, list…) must also wait for a flush
    // already in flight — the background one may have taken the batch and not yet committed it.
    const flushing = yield* Effect.makeSemaphore(1)

    const flush = flushing.withPermits(1)(Effect.suspend(() => {
      if (accesses.isEmpty) return Effect.void
      const taken = accesses.take()
      const keys: Array<string> = []
      const counts: Array<number> = []
      const times: Array<number> = []
      for (const [key, access] of taken.accesses) {
        keys.push(key)
        counts.push(access.hits)
        times.push(access.at)
      }
      return transaction(
        sql,
        Effect.zipRight(
          // Rows locked in key order, as every flush locks them: two processes flushing
          // overlapping keys wait for each other instead of deadlocking.
          keys.length === 0 ? Effect.void : sql.unsafe(
            `WITH v AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS v(key, h, at)),
              locked AS (SELECT e.key FROM ${E} e JOIN v USING (key) ORDER BY e.key FOR UPDATE OF e)
            UPDATE ${E} e SET hits = e.hits + v.h, accessed_at = greatest(e.accessed_at, v.at)
            FROM v JOIN locked USING (key) WHERE e.key = v.key`,
            [keys, counts, times]
          ),
          sql.unsafe(`UPDATE ${C} SET hits = hits + $1, misses = misses + $2 WHERE id = 1`, [taken.hits, taken.misses])
        )
      ).pipe(
        retryConflict,
        Effect.asVoid,
        Effect.mapError((cause) => {
          // Keep what could not be written for the next flush rather than losing counts.
          accesses.restore(taken)
          return fail("MetadataStore.flush", "WriteFailed", cause)
        })
      )
    }))

    // Reads must work on a full disk: a failed flush before one keeps its batch and is logged.
    const flushFirst = Effect.catchAll(flush, (error) =>
      Effect.logWarning("cacheness: could not write batched hit counts; kept for the next flush", error.message))
    yield* flush.pipe(
      Effect.catchAll((error) =>
        Effect.logWarning("cacheness: could not write access statistics", error.message)
      ),
      Effect.repeat(Schedule.spaced(options.flushInterval ?? "1 second")),
      // Wall-clock I/O, not cache time (see MetadataStoreSqlite).
      Effect.withClock(daemonClock),
      Effect.interruptible,
      Effect.forkScoped
    )
    // Registered after the pool: finalizers run in reverse, so this flush runs while it is open.
    yield* Effect.addFinalizer(() => Effect.ignoreLogged(flush))
    // A script that never closes the cache still gets its batched accesses written.
    yield* flushBeforeExit(flush, () => !accesses.isEmpty)

    const where = (filter: EntryFilter, params: Array<unknown>): string => {
      const next = (value: unknown) => {
        params.push(value)
        return `$${params.length}`
      }
      const conditions: Array<string> = []
      if (filter.keys !== undefined) conditions.push(`key = ANY(${next(filter.keys)}::text[])`)
      if (filter.namespace !== undefined) {
        conditions.push(`namespace = ${next(filter.namespace)}${filter.namespace === "" ? "" : " AND namespace <> ''"}`)
      }
      if (filter.tags !== undefined) {
        conditions.push(`key IN (SELECT key FROM ${T} WHERE tag = ANY(${next(filter.tags)}::text[]))`)
      }
      if (filter.createdBefore !== undefined) conditions.push(`created_at < ${next(filter.createdBefore)}`)
      if (filter.expiredAt !== undefined) {
        // Past the grace too; `expires_at` first so the expiry index serves it (stale_until >= expires_at).
        const at = next(filter.expiredAt)
        conditions.push(`expires_at IS NOT NULL AND expires_at <= ${at} AND coalesce(stale_until, expires_at) <= ${at}`)
      }
      if (filter.checksum !== undefined) conditions.push(`checksum = ${next(filter.checksum)}`)
      if (filter.blobId !== undefined) {
        conditions.push(filter.blobId === null ? `blob_id IS NULL` : `blob_id = ${next(filter.blobId)}`)
      }
      let clause = conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`
      if (filter.limit !== undefined) {
        // SKIP LOCKED: concurrent cleanups in several processes take disjoint batches.
        clause = ` WHERE key IN (SELECT key FROM ${E}${clause} LIMIT ${next(filter.limit)} FOR UPDATE SKIP LOCKED)`
      }
      return clause
    }

    // The columns of an entry row, and what a write of a key already stored replaces (one upsert
    // and a batch's upsert write the same row).
    const ENTRY_COLUMNS = `key, namespace, description, format, codec, stored_bytes, raw_bytes, checksum, blob_id,
        inline_value, created_at, accessed_at, expires_at, hits, params, metadata, stale_until, tags`
    const REPLACE_ENTRY =
      `ON CONFLICT (key) DO UPDATE SET namespace = excluded.namespace, description = excluded.description,
        format = excluded.format, codec = excluded.codec, stored_bytes = excluded.stored_bytes,
        raw_bytes = excluded.raw_bytes, checksum = excluded.checksum, blob_id = excluded.blob_id,
        inline_value = excluded.inline_value, created_at = excluded.created_at,
        accessed_at = excluded.accessed_at, expires_at = excluded.expires_at, hits = 0,
        params = excluded.params, metadata = excluded.metadata, stale_until = excluded.stale_until,
        tags = excluded.tags`

    // The tag index follows in the same statement: index rows of tags the new version lacks go,
    // its own are added (one that already exists stays: both sub-statements see the old rows).
    const upsertSql = `WITH old AS (SELECT blob_id, stored_bytes FROM ${E} WHERE key = $1),
      untagged AS (DELETE FROM ${T} WHERE key = $1 AND tag <> ALL(coalesce($17::text[], '{}'))),
      tagged AS (INSERT INTO ${T} (tag, key) SELECT DISTINCT unnest($17::text[]), $1 ON CONFLICT DO NOTHING)
      INSERT INTO ${E} (${ENTRY_COLUMNS})
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $15, $16, $17)
      ${REPLACE_ENTRY}
      RETURNING (SELECT blob_id FROM old) AS previous, (SELECT stored_bytes FROM old)::float8 AS "previousBytes",
        (SELECT bytes FROM ${C} WHERE id = 1)::float8 AS bytes`
    const insertRow = new Map(
      Array.from(tables.values(), (def) => [def.name, TableSql.insertRow("pg", def, q)] as const)
    )

    /**
     * `upsertSql` for `n` entries with distinct keys in one statement (built once per size). The
     * parameters are the 17 of each entry, then the keys, then the tag index's (tag, key) pairs as
     * two arrays. One row comes back: the counters' bytes before the statement and the rows it
     * replaced, as JSON (`[key, blob_id, stored_bytes]`). The counter triggers run once per
     * statement, not per entry.
     */
    const upsertManyStatements = new Map<number, string>()
    const upsertManySql = (n: number): string => {
      let text = upsertManyStatements.get(n)
      if (text !== undefined) return text
      const values: Array<string> = []
      for (let i = 0; i < n; i++) {
        const p = (j: number) => `$${i * UPSERT_PARAMS + j}`
        values.push(
          `(${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)}, ${p(11)}, ${
            p(12)
          }, ${p(13)}, 0, ${p(14)}, ${p(15)}, ${p(16)}, ${p(17)}::text[])`
        )
      }
      const keys = `$${n * UPSERT_PARAMS + 1}::text[]`
      const tagsOf = `unnest($${n * UPSERT_PARAMS + 2}::text[], $${n * UPSERT_PARAMS + 3}::text[])`
      text = `WITH old AS (SELECT key, blob_id, stored_bytes FROM ${E} WHERE key = ANY(${keys})),
      untagged AS (DELETE FROM ${T} AS t WHERE t.key = ANY(${keys})
        AND NOT EXISTS (SELECT 1 FROM ${tagsOf} AS n(tag, key) WHERE n.tag = t.tag AND n.key = t.key)),
      tagged AS (INSERT INTO ${T} (tag, key) SELECT DISTINCT tag, key FROM ${tagsOf} AS n(tag, key)
        ON CONFLICT DO NOTHING),
      written AS (INSERT INTO ${E} (${ENTRY_COLUMNS})
      VALUES ${values.join(",\n        ")}
      ${REPLACE_ENTRY}
      RETURNING 1)
      SELECT (SELECT bytes FROM ${C} WHERE id = 1)::float8 AS bytes,
        (SELECT coalesce(json_agg(json_build_array(key, blob_id, stored_bytes)), '[]')::text FROM old) AS old,
        (SELECT count(*) FROM written)::float8 AS written`
      upsertManyStatements.set(n, text)
      return text
    }

    /**
     * One statement of `upsertMany` for entries with distinct keys (and their custom rows after
     * it, in the same transaction): the blob ids it replaced and the total bytes after it.
     */
    const upsertChunk = (items: ReadonlyArray<UpsertItem>) => {
      const params: Array<unknown> = []
      const keys: Array<string> = []
      const tagNames: Array<string> = []
      const tagKeys: Array<string> = []
      let storedBytes = 0
      for (const { record } of items) {
        const tags = record.tags === undefined || record.tags.length === 0 ? null : record.tags
        for (const value of upsertValues(record, toBuffer(record.inline), tags)) params.push(value)
        keys.push(record.key)
        storedBytes += record.storedBytes
        if (tags !== null) {
          for (const tag of tags) {
            tagNames.push(tag)
            tagKeys.push(record.key)
          }
        }
      }
      params.push(keys, tagNames, tagKeys)
      const statement = Effect.map(
        sql.unsafe<{ bytes: number | null; old: string }>(upsertManySql(items.length), params),
        ([row]) => {
          const newBlob = new Map(items.map(({ record }) => [record.key, record.blobId] as const))
          const replacedBlobIds: Array<string> = []
          let previousBytes = 0
          for (const [key, blobId, bytes] of JSON.parse(row.old) as Array<[string, string | null, number]>) {
            previousBytes += bytes
            if (blobId !== null && blobId !== newBlob.get(key)) replacedBlobIds.push(blobId)
          }
          return { replacedBlobIds, totalBytes: (row.bytes ?? 0) - previousBytes + storedBytes }
        }
      )
      return items.every(({ rows }) => rows === undefined || rows.length === 0) ? statement : Effect.tap(
        statement,
        () =>
          Effect.forEach(
            items,
            ({ record, rows }) =>
              Effect.forEach(
                rows ?? [],
                ({ row, table }) =>
                  sql.unsafe(insertRow.get(table)!, TableSql.rowParams("pg", tables.get(table)!, record.key, row)),
                { discard: true }
              ),
            { discard: true }
          )
      )
    }

    /**
     * A batch cut into `upsertChunk`s: at most `UPSERT_CHUNK` entries each, and a key given again
     * starts a new one (one statement cannot update a row twice; the later entry must win and
     * replace the earlier one's blob).
     */
    const chunksOf = (items: ReadonlyArray<UpsertItem>): Array<Array<UpsertItem>> => {
      const chunks: Array<Array<UpsertItem>> = []
      let chunk: Array<UpsertItem> = []
      let seen = new Set<string>()
      for (const item of items) {
        if (chunk.length === UPSERT_CHUNK || seen.has(item.record.key)) {
          chunks.push(chunk)
          chunk = []
          seen = new Set()
        }
        chunk.push(item)
        seen.add(item.record.key)
      }
      if (chunk.length > 0) chunks.push(chunk)
      return chunks
    }

    const toBuffer = (bytes: Uint8Array | null) =>
      bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

    const unknownTable = (rows: ReadonlyArray<TableRow> | undefined): MetadataError | undefined => {
      for (const { table } of rows ?? []) {
        if (!tables.has(table)) {
          return new MetadataError({
            method: "MetadataStore.upsert",
            reason: "UnknownTable",
            description: `no custom metadata table ${table} is registered`
          })
        }
      }
      return undefined
    }

    /** One entry's statements (the caller runs them in a transaction when there are several). */
    const upsertOne = (record: EntryRecord, rows: ReadonlyArray<TableRow> | undefined) => {
      const statement = sql.unsafe<{ previous: string | null; previousBytes: number | null; bytes: number }>(
        upsertSql,
        upsertValues(
          record,
          toBuffer(record.inline),
          record.tags === undefined || record.tags.length === 0 ? null : record.tags
        )
      ).pipe(Effect.map(([row]) => ({
        replacedBlobId: row.previous === null || row.previous === record.blobId ? null : row.previous,
        totalBytes: row.bytes - (row.previousBytes ?? 0) + record.storedBytes
      })))
      return rows === undefined || rows.length === 0 ? statement : Effect.tap(statement, () =>
        Effect.forEach(
          rows,
          ({ row, table }) =>
            sql.unsafe(insertRow.get(table)!, TableSql.rowParams("pg", tables.get(table)!, record.key, row)),
          { discard: true }
        ))
    }

    const store = makeMetadataStore({
      backend: "postgres",
      lookup: (key) =>
        sql.unsafe<EntryRecord>(
          `SELECT ${recordColumns("")}, inline_value AS inline FROM ${E} WHERE key = $1`,
          [key]
        ).pipe(
          Effect.map((rows) => Option.fromNullable(withTags(rows)[0])),
          retryRead,
          Effect.mapError((cause) => fail("MetadataStore.lookup", "QueryFailed", cause))
        ),
      probe: (key) =>
        sql.unsafe<StoredValue>(
          `SELECT key, stored_bytes::float8 AS "storedBytes", checksum, blob_id AS "blobId", inline_value AS inline,
            expires_at::float8 AS "expiresAt", stale_until::float8 AS "staleUntil" FROM ${E} WHERE key = $1`,
          [key]
        ).pipe(
          Effect.map((rows) => Option.fromNullable(rows[0])),
          retryRead,
          Effect.mapError((cause) => fail("MetadataStore.probe", "QueryFailed", cause))
        ),
      upsert: (record, rows) => {
        const unknown = unknownTable(rows)
        if (unknown !== undefined) return Effect.fail(unknown)
        const write = upsertOne(record, rows)
        return (rows === undefined || rows.length === 0 ? write : transaction(sql, write)).pipe(
          retryConflict,
          Effect.mapError((cause) =>
            fail("MetadataStore.upsert", (pgCode(cause) ?? "").startsWith("23") ? "InvalidRow" : "WriteFailed", cause)
          )
        )
      },
      lookupMany: (keys) =>
        sql.unsafe<EntryRecord>(
          `SELECT ${recordColumns("")}, inline_value AS inline FROM ${E} WHERE key = ANY($1::text[])`,
          [keys]
        ).pipe(
          Effect.map((rows) => {
            const found = new Map(withTags(rows).map((r) => [r.key, r] as const))
            return keys.map((key) => Option.fromNullable(found.get(key)))
          }),
          retryRead,
          Effect.mapError((cause) => fail("MetadataStore.lookupMany", "QueryFailed", cause))
        ),
      probeMany: (keys) =>
        sql.unsafe<StoredValue>(
          `SELECT key, stored_bytes::float8 AS "storedBytes", checksum, blob_id AS "blobId", inline_value AS inline,
            expires_at::float8 AS "expiresAt", stale_until::float8 AS "staleUntil" FROM ${E} WHERE key = ANY($1::text[])`,
          [keys]
        ).pipe(
          Effect.map((rows) => {
            const found = new Map(rows.map((r) => [r.key, r] as const))
            return keys.map((key) => Option.fromNullable(found.get(key)))
          }),
          retryRead,
          Effect.mapError((cause) => fail("MetadataStore.probeMany", "QueryFailed", cause))
        ),
      // One transaction: a failing entry rolls the batch back. One statement per chunk of entries.
      upsertMany: (items) => {
        for (const { rows } of items) {
          const unknown = unknownTable(rows)
          if (unknown !== undefined) return Effect.fail(unknown)
        }
        return transaction(
          sql,
          Effect.suspend(() =>
            Effect.reduce(
              chunksOf(items),
              { replacedBlobIds: [] as Array<string>, totalBytes: -1 },
              (acc, chunk) =>
                Effect.map(upsertChunk(chunk), (written) => {
                  for (const id of written.replacedBlobIds) acc.replacedBlobIds.push(id)
                  acc.totalBytes = written.totalBytes
                  return acc
                })
            )
          )
        ).pipe(
          retryConflict,
          Effect.flatMap((result) =>
            result.totalBytes >= 0 ? Effect.succeed(result) : Effect.map(
              sql.unsafe<{ bytes: number }>(`SELECT bytes::float8 AS bytes FROM ${C} WHERE id = 1`),
              (rows) => ({ replacedBlobIds: result.replacedBlobIds, totalBytes: rows[0]?.bytes ?? 0 })
            )
          ),
          Effect.mapError((cause) =>
            cause instanceof MetadataError
              ? cause
              : fail(
                "MetadataStore.upsertMany",
                (pgCode(cause) ?? "").startsWith("23") ? "InvalidRow" : "WriteFailed",
                cause
              )
          )
        )
      },
      remove: (filter) =>
        Effect.suspend(() => {
          const params: Array<unknown> = []
          const clause = where(filter, params)
          return sql.unsafe<RemovedRef>(`DELETE FROM ${E}${clause} RETURNING ${REMOVED}`, params)
        }).pipe(retryConflict, Effect.mapError((cause) => fail("MetadataStore.remove", "WriteFailed", cause))),
      // One row back per batch instead of one per removed entry: the count and the blob ids.
      removeCounted: (filter) =>
        Effect.suspend(() => {
          const params: Array<unknown> = []
          const clause = where(filter, params)
          return sql.unsafe<{ readonly removed: number; readonly blobIds: ReadonlyArray<string> }>(
            `WITH gone AS (DELETE FROM ${E}${clause} RETURNING blob_id)
             SELECT count(*)::int AS removed, coalesce(array_agg(blob_id) FILTER (WHERE blob_id IS NOT NULL), '{}') AS "blobIds"
             FROM gone`,
            params
          )
        }).pipe(
          retryConflict,
          Effect.map((rows) => ({ removed: rows[0].removed, blobIds: rows[0].blobIds })),
          Effect.mapError((cause) => fail("MetadataStore.remove", "WriteFailed", cause))
        ),
      select: (filter) =>
        Effect.zipRight(
          flushFirst,
          Effect.suspend(() => {
            const params: Array<unknown> = []
            const clause = where(filter, params)
            return sql.unsafe<EntryRecord>(`SELECT ${recordColumns("")}, NULL AS inline FROM ${E}${clause}`, params)
          }).pipe(
            Effect.map(withTags),
            retryRead,
            Effect.mapError((cause) => fail("MetadataStore.select", "QueryFailed", cause))
          )
        ),
      list: (listOptions) =>
        Effect.zipRight(
          flushFirst,
          Effect.suspend(() => {
            const direction = listOptions.descending === true ? "DESC" : "ASC"
            const params: Array<unknown> = []
            let text = `SELECT ${recordColumns("")}, NULL AS inline FROM ${E}`
            const conditions: Array<string> = []
            if (listOptions.namespace !== undefined) {
              params.push(listOptions.namespace)
              conditions.push(
                `namespace = $${params.length}${listOptions.namespace === "" ? "" : " AND namespace <> ''"}`
              )
            }
            if (listOptions.tag !== undefined) {
              params.push(listOptions.tag)
              conditions.push(`key IN (SELECT key FROM ${T} WHERE tag = $${params.length})`)
            }
            if (conditions.length > 0) text += ` WHERE ${conditions.join(" AND ")}`
            // Insertion order (seq) by default and among ties. SQLite sorts NULL first in ascending
            // order; the default store sets the expectation.
            text += listOptions.orderBy === undefined
              ? ` ORDER BY seq ${direction}`
              : ` ORDER BY ${ORDER_COLUMNS[listOptions.orderBy]} ${direction} NULLS ${
                direction === "ASC" ? "FIRST" : "LAST"
              }, seq ${direction}`
            if (listOptions.limit !== undefined) {
              params.push(listOptions.limit)
              text += ` LIMIT $${params.length}`
            }
            params.push(listOptions.offset ?? 0)
            text += ` OFFSET $${params.length}`
            return sql.unsafe<EntryRecord>(text, params)
          }).pipe(
            Effect.map(withTags),
            retryRead,
            Effect.mapError((cause) => fail("MetadataStore.list", "QueryFailed", cause))
          )
        ),
      touch: (key, expiresAt, now, resign) =>
        (resign === undefined
          ? sql.unsafe(
            `UPDATE ${E} SET expires_at = $1, accessed_at = greatest(accessed_at, $2), stale_until = ${TOUCHED_STALE_UNTIL}
           WHERE key = $3 AND (expires_at IS NULL OR expires_at > $2) RETURNING 1 AS one`,
            [expiresAt, now, key]
          )
          : sql.unsafe(
            `UPDATE ${E} SET expires_at = $1, accessed_at = greatest(accessed_at, $2), checksum = $4,
             stale_until = ${TOUCHED_STALE_UNTIL}
           WHERE key = $3 AND (expires_at IS NULL OR expires_at > $2) AND checksum = $5 RETURNING 1 AS one`,
            [expiresAt, now, key, resign.to, resign.from]
          )).pipe(
            retryConflict,
            Effect.map((rows) => rows.length > 0),
            Effect.mapError((cause) => fail("MetadataStore.touch", "WriteFailed", cause))
          ),
      recordAccess: (key, now) => Effect.sync(() => accesses.record(key, now)),
      evict: (bytes) =>
        Effect.zipRight(
          flushFirst,
          sql.unsafe<RemovedRef>(
            `WITH ranked AS (
               SELECT key, sum(stored_bytes) OVER (ORDER BY accessed_at, key) - stored_bytes AS before FROM ${E}
             )
             DELETE FROM ${E} e USING ranked r WHERE e.key = r.key AND r.before < $1
             RETURNING e.key, e.blob_id AS "blobId", e.stored_bytes::float8 AS "storedBytes"`,
            [bytes]
          ).pipe(retryConflict, Effect.mapError((cause) => fail("MetadataStore.evict", "WriteFailed", cause)))
        ),
      totals: Effect.zipRight(
        flushFirst,
        sql.unsafe<Totals>(
          `SELECT entries::float8 AS entries, bytes::float8 AS "totalBytes", hits::float8 AS hits, misses::float8 AS misses
           FROM ${C} WHERE id = 1`
        ).pipe(
          Effect.map((rows) => rows[0]),
          retryRead,
          Effect.mapError((cause) => fail("MetadataStore.totals", "QueryFailed", cause))
        )
      ),
      // Another namespace than the default is counted; the default holds what none of them counts.
      namespaceTotals: (namespace) =>
        Effect.zipRight(
          flushFirst,
          sql.unsafe<{ readonly entries: number; readonly totalBytes: number }>(
            namespace === ""
              ? `SELECT (c.entries - coalesce((SELECT sum(entries) FROM ${s}.cacheness_namespace_counters), 0))::float8
                   AS entries,
                 (c.bytes - coalesce((SELECT sum(bytes) FROM ${s}.cacheness_namespace_counters), 0))::float8
                   AS "totalBytes" FROM ${C} c WHERE id = 1`
              : `SELECT entries::float8 AS entries, bytes::float8 AS "totalBytes"
                 FROM ${s}.cacheness_namespace_counters WHERE namespace = $1`,
            namespace === "" ? [] : [namespace]
          ).pipe(
            Effect.map((rows) => rows[0] ?? { entries: 0, totalBytes: 0 }),
            retryRead,
            Effect.mapError((cause) => fail("MetadataStore.namespaceTotals", "QueryFailed", cause))
          )
        ),
      // The row as examined (blob id and checksum): a re-stored version is left alone. The update
      // trigger moves the byte counter with it.
      repairSize: (key, blobId, checksum, storedBytes) =>
        sql.unsafe(
          `UPDATE ${E} SET stored_bytes = $1 WHERE key = $2 AND blob_id IS NOT DISTINCT FROM $3 AND checksum = $4 RETURNING key`,
          [storedBytes, key, blobId, checksum]
        ).pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.mapError((cause) => fail("MetadataStore.repairSize", "WriteFailed", cause))
        ),
      // SHARE mode waits for writers in flight and holds new ones off, so the count and the rows
      // it counts are the same state (a writer's trigger commits with its row).
      recount: Effect.zipRight(
        flush,
        transaction(
          sql,
          Effect.zipRight(
            Effect.all([
              sql.unsafe(`LOCK TABLE ${E} IN SHARE MODE`),
              sql.unsafe(`DELETE FROM ${s}.cacheness_namespace_counters`),
              sql.unsafe(`INSERT INTO ${s}.cacheness_namespace_counters (namespace, entries, bytes)
                SELECT namespace, count(*), coalesce(sum(stored_bytes), 0) FROM ${E} WHERE namespace <> ''
                GROUP BY namespace`)
            ], { discard: true }),
            sql.unsafe<Totals>(
              `UPDATE ${C} SET entries = (SELECT count(*) FROM ${E}), bytes = (SELECT coalesce(sum(stored_bytes), 0) FROM ${E})
               WHERE id = 1
               RETURNING entries::float8 AS entries, bytes::float8 AS "totalBytes", hits::float8 AS hits, misses::float8 AS misses`
            )
          )
        ).pipe(
          Effect.map((rows) => rows[0]!),
          Effect.mapError((cause) => fail("MetadataStore.recount", "WriteFailed", cause))
        )
      ),
      clear: sql.unsafe<RemovedRef>(`DELETE FROM ${E} RETURNING ${REMOVED}`).pipe(
        retryConflict,
        Effect.mapError((cause) => fail("MetadataStore.clear", "WriteFailed", cause))
      ),
      flush,
      queryTable: (table, query) =>
        Effect.zipRight(
          flushFirst,
          Effect.suspend(() => {
            const def = tables.get(table)
            if (def === undefined) {
              return Effect.fail(
                new MetadataError({
                  method: "MetadataStore.queryTable",
                  reason: "UnknownTable",
                  description: `no custom metadata table ${table} is registered`
                })
              )
            }
            const clause = TableSql.whereClause("pg", def, query)
            const columns = def.columns.map((c) => `t.${c.name} AS "t.${c.name}"`).join(", ")
            return sql.unsafe<Record<string, unknown>>(
              `SELECT ${recordColumns("e.")}, NULL AS inline, ${columns} FROM ${
                q(def.name)
              } t JOIN ${E} e ON e.key = t.cache_key${clause.sql}${TableSql.orderClause(def, query)}`,
              clause.params
            ).pipe(
              Effect.map((rows) =>
                rows.map((r): TableMatch => {
                  const row: Record<string, unknown> = {}
                  for (const c of def.columns) {
                    row[c.name] = r[`t.${c.name}`]
                    delete r[`t.${c.name}`]
                  }
                  if (r.tags === null) r.tags = undefined
                  return { record: r as unknown as EntryRecord, row }
                })
              ),
              Effect.mapError((cause) => fail("MetadataStore.queryTable", "QueryFailed", cause))
            )
          })
        ),
      sql,
      acquireLease: (key, holder, until, now) =>
        // One statement: atomic across processes without an explicit transaction. The conditional
        // DO UPDATE leaves a live lease of another holder alone, and then returns no row.
        sql.unsafe(
          `INSERT INTO ${s}.cacheness_leases (key, holder, expires_at) VALUES ($1, $2, $3)
           ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
           WHERE ${s}.cacheness_leases.expires_at <= $4 OR ${s}.cacheness_leases.holder = excluded.holder
           RETURNING 1 AS one`,
          [key, holder, until, now]
        ).pipe(
          retryConflict,
          Effect.map((rows) => rows.length > 0),
          Effect.mapError((cause) => fail("MetadataStore.acquireLease", "WriteFailed", cause))
        ),
      acquireLeaseIfAbsent: (key, holder, until, now, liveAt) =>
        // The same statement, selecting its row only while no live entry is stored under the key.
        sql.unsafe(
          `INSERT INTO ${s}.cacheness_leases (key, holder, expires_at)
           SELECT $1::text, $2::text, $3::bigint
           WHERE NOT EXISTS (SELECT 1 FROM ${s}.cacheness_entries
             WHERE key = $1::text AND (expires_at IS NULL OR expires_at > $5::bigint))
           ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
           WHERE ${s}.cacheness_leases.expires_at <= $4 OR ${s}.cacheness_leases.holder = excluded.holder
           RETURNING 1 AS one`,
          [key, holder, until, now, liveAt]
        ).pipe(
          retryConflict,
          Effect.map((rows) => rows.length > 0),
          Effect.mapError((cause) => fail("MetadataStore.acquireLease", "WriteFailed", cause))
        ),
      releaseLease: (key, holder) =>
        sql.unsafe(`DELETE FROM ${s}.cacheness_leases WHERE key = $1 AND holder = $2`, [key, holder]).pipe(
          retryConflict,
          Effect.asVoid,
          Effect.mapError((cause) => fail("MetadataStore.releaseLease", "WriteFailed", cause))
        ),
      lookupFingerprints: (paths) =>
        paths.length === 0 ? Effect.succeed([]) : sql.unsafe<PathFingerprint>(
          `SELECT path, stat, hash FROM ${s}.cacheness_fingerprints WHERE path = ANY($1::text[])`,
          [paths]
        ).pipe(Effect.mapError((cause) => fail("MetadataStore.lookupFingerprints", "QueryFailed", cause))),
      saveFingerprints: (rows) =>
        rows.length === 0 ? Effect.void : Effect.asVoid(sql.unsafe(
          // One statement for the batch; a path given twice keeps its last fingerprint.
          `INSERT INTO ${s}.cacheness_fingerprints (path, stat, hash)
           SELECT DISTINCT ON (path) path, stat, hash FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS v(path, stat, hash, n)
           ORDER BY path, n DESC
           ON CONFLICT (path) DO UPDATE SET stat = excluded.stat, hash = excluded.hash`,
          [rows.map((r) => r.path), rows.map((r) => r.stat), rows.map((r) => r.hash)]
        )).pipe(Effect.mapError((cause) => fail("MetadataStore.saveFingerprints", "WriteFailed", cause))),
      // Byte order ("C"), whatever the database's collation: the cursor and the order must agree.
      fingerprintPaths: (after, limit) =>
        sql.unsafe<{ path: string }>(
          `SELECT path FROM ${s}.cacheness_fingerprints WHERE $1::text IS NULL OR path COLLATE "C" > $1::text
           ORDER BY path COLLATE "C" LIMIT $2`,
          [after, limit]
        ).pipe(
          Effect.map((rows) => rows.map((row) => row.path)),
          Effect.mapError((cause) => fail("MetadataStore.fingerprintPaths", "QueryFailed", cause))
        ),
      deleteFingerprints: (paths) =>
        paths.length === 0 ? Effect.succeed(0) : sql.unsafe<{ path: string }>(
          `DELETE FROM ${s}.cacheness_fingerprints WHERE path = ANY($1::text[]) RETURNING path`,
          [paths]
        ).pipe(
          Effect.map((rows) => rows.length),
          Effect.mapError((cause) => fail("MetadataStore.deleteFingerprints", "WriteFailed", cause))
        )
    })
    if (options.changeNotifications !== true) return store
    const feed = yield* PgChanges.make({
      url,
      schema: s,
      connectTimeout: options.connectTimeout === undefined
        ? 10_000
        : Duration.toMillis(Duration.decode(options.connectTimeout))
    })
    return PgChanges.attach(store, feed)
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: PgStoreOptions): Layer.Layer<MetadataStore, MetadataError | ConfigError> =>
  Layer.scoped(MetadataStore, make(options))
