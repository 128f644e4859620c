/**
 * The JSON-file metadata store: the whole cache index in one human-readable file. For tiny caches
 * and for people who want to read or diff the index; every write rewrites the file, so it is
 * O(entries) per put (see docs/CONFIGURATION.md, "Choosing a metadata backend").
 *
 * - Atomic replace: a write goes to a temp file that is renamed over the index, so a reader (in
 *   this or another process) sees the old file or the new one, never a torn one.
 * - Processes are serialised by a lock file (`<file>.lock`, holding pid, host and time). A write
 *   takes the lock, reloads the file when another process changed it, applies the change, writes,
 *   and releases: no update is lost. A lock whose owner is dead (same host) or that is older than
 *   `staleLockAfter` is broken; a live lock held past `lockTimeout` is a `MetadataError` "Busy".
 * - Reads check the file's identity (inode, size, mtime) and reload only when it changed.
 * - A file that does not parse is moved aside as `<file>.corrupt-<time>`, a warning is logged,
 *   and the cache starts empty. A file written by a newer release is refused ("NewerLayout").
 * - Hits and access times are batched in memory and written once per `flushInterval`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { daemonClock, flushBeforeExit } from "../shared/daemonClock.js"
import * as NamespaceKey from "../shared/namespaceKey.js"
import { AccessBatch } from "./accessBatch.js"
import { make as makeMetadataStore } from "./make.js"
import { MemoryState } from "./memory.js"
import type { EntryRecord, TableDefinition } from "./service.js"
import { MetadataError, MetadataStore } from "./service.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface JsonStoreOptions {
  /** Path of the index file, e.g. `<directory>/cacheness.json`. */
  readonly filename: string
  /** How long a write waits for another process's lock. Default 10 seconds. */
  readonly lockTimeout?: Duration.DurationInput | undefined
  /** A lock older than this is considered abandoned and broken. Default 30 seconds. */
  readonly staleLockAfter?: Duration.DurationInput | undefined
  /** How often batched hits and access times are written. Default 1 second. */
  readonly flushInterval?: Duration.DurationInput | undefined
  /** Custom metadata tables (typed filters only; there is no SQL on this backend). */
  readonly tables?: ReadonlyArray<TableDefinition> | undefined
  /**
   * Open for looking only: the file is never written or moved, no lock is taken, hits and access
   * times are not recorded, and a corrupt file is a `Corrupt` error. Changes fail.
   */
  readonly readOnly?: boolean | undefined
}

/**
 * The newest file layout this code knows. A file with a higher `layout` is refused.
 *
 * @since 0.1.0
 * @category constants
 */
export const LAYOUT_VERSION = 2

const FORMAT = "cacheness-metadata"

/** An entry as stored: the record without its key (the map key), inline bytes as base64. */
type StoredEntry = Omit<EntryRecord, "key" | "inline"> & { readonly inline: string | null }

interface Document {
  readonly format: typeof FORMAT
  readonly layout: number
  readonly counters: { readonly hits: number; readonly misses: number }
  readonly entries: Record<string, StoredEntry>
  readonly tables: Record<string, Record<string, Record<string, unknown>>>
  /** Single-flight leases: key → [holder, until]. */
  readonly leases?: Record<string, readonly [string, number]>
  /** Stat fingerprints of hashed paths: path → [stat, hash]. */
  readonly fingerprints?: Record<string, readonly [string, string]>
  /** The tag index: tag → keys of the entries carrying it (rebuilt from the entries on load). */
  readonly tags?: Record<string, ReadonlyArray<string>>
}

/**
 * Upgrades of older layouts, by the layout they upgrade from. Layout 1 is the first; a future
 * layout 2 adds `1: (doc) => ({ ...doc, layout: 2, ... })` here.
 */
const UPGRADES: Record<number, (doc: any, derive: NamespaceKey.Derive) => any> = {
  // Layout 2: namespaces are part of an entry's identity (`shared/namespaceKey.ts`). Entries of
  // every namespace but the default are rekeyed, in place (the file's order is insertion order),
  // with their custom metadata rows; leases are transient and left as they are.
  1: (doc, derive) => {
    const renamed = new Map<string, string>()
    const entries: Record<string, any> = {}
    for (const [key, entry] of Object.entries<any>(doc.entries ?? {})) {
      const namespace = typeof entry?.namespace === "string" ? entry.namespace : NamespaceKey.DEFAULT_NAMESPACE
      const next = derive(namespace, key)
      if (next !== key) renamed.set(key, next)
      entries[next] = next === key || typeof entry?.checksum !== "string"
        ? entry
        : { ...entry, checksum: NamespaceKey.rebindChecksum(entry.checksum, key, next) }
    }
    const tables: Record<string, Record<string, unknown>> = {}
    for (const [name, rows] of Object.entries<Record<string, unknown>>(doc.tables ?? {})) {
      tables[name] = Object.fromEntries(Object.entries(rows).map(([key, row]) => [renamed.get(key) ?? key, row]))
    }
    return { ...doc, layout: 2, entries, tables }
  }
}

/**
 * Grace (stale_until): entries written before it existed get none — `staleUntil = expiresAt`.
 * Idempotent and needing no layout of its own: a file written by a release without grace simply
 * lacks the field, and an older release keeps the field it does not know when it rewrites the file.
 */
const addStaleUntil = (doc: Document): Document => {
  for (const entry of Object.values(doc.entries) as Array<{ -readonly [K in keyof StoredEntry]: StoredEntry[K] }>) {
    if (entry !== null && typeof entry === "object" && entry.staleUntil === undefined) {
      entry.staleUntil = entry.expiresAt
    }
  }
  return doc
}

// Real time for locks: lock staleness is about other processes' wall clocks, not cache time.
const wallClock = Clock.make()

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

const stampOf = (filename: string): string | null => {
  try {
    const s = fs.statSync(filename, { bigint: true })
    return `${s.ino}:${s.size}:${s.mtimeNs}`
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return null
    throw cause
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (cause) {
    return (cause as NodeJS.ErrnoException).code === "EPERM"
  }
}

const serialise = (state: MemoryState): string => {
  const lines: Array<string> = []
  for (const record of state.rows.values()) {
    const { inline, key, ...rest } = record
    const stored: StoredEntry = { ...rest, inline: inline === null ? null : Buffer.from(inline).toString("base64") }
    lines.push(`${JSON.stringify(key)}: ${JSON.stringify(stored)}`)
  }
  const tables: Record<string, Record<string, unknown>> = {}
  for (const [name, rows] of state.tables.byTable) tables[name] = Object.fromEntries(rows)
  // One entry per line: readable, and a diff of two versions shows the entries that changed.
  const fingerprints: Record<string, readonly [string, string]> = {}
  for (const f of state.fingerprints.values()) fingerprints[f.path] = [f.stat, f.hash]
  const leases: Record<string, readonly [string, number]> = {}
  for (const [key, lease] of state.leases) leases[key] = [lease.holder, lease.until]
  // The tag index, for readers of the file: tag → keys. A load rebuilds it from the entries' own
  // tags, so an index edited by hand (or by an older release, which has none) cannot disagree.
  const tags: Record<string, ReadonlyArray<string>> = {}
  for (const [tag, keys] of state.tagIndex) tags[tag] = Array.from(keys)
  return `{"format": "${FORMAT}", "layout": ${LAYOUT_VERSION},\n"counters": ${
    JSON.stringify({ hits: state.hits, misses: state.misses })
  },\n"tables": ${JSON.stringify(tables)},\n"fingerprints": ${JSON.stringify(fingerprints)},\n"leases": ${
    JSON.stringify(leases)
  },\n"tags": ${JSON.stringify(tags)},\n"entries": {${lines.length === 0 ? "" : "\n"}${lines.join(",\n")}\n}}\n`
}

/**
 * Writes an index file holding `records` (for tools and benchmarks that build a large index
 * without paying one rewrite per entry).
 *
 * @since 0.1.0
 * @category utilities
 */
export const writeIndex = (filename: string, records: Iterable<EntryRecord>): void => {
  const state = new MemoryState(new Map())
  for (const record of records) state.load(record)
  fs.mkdirSync(path.dirname(filename), { recursive: true })
  fs.writeFileSync(filename, serialise(state))
}

const parse = (text: string, derive: NamespaceKey.Derive): Document => {
  let doc = JSON.parse(text)
  if (doc === null || typeof doc !== "object" || doc.format !== FORMAT || typeof doc.layout !== "number") {
    throw new SyntaxError("not a cacheness metadata file")
  }
  while (doc.layout < LAYOUT_VERSION && UPGRADES[doc.layout] !== undefined) doc = UPGRADES[doc.layout](doc, derive)
  if (typeof doc.entries !== "object" || doc.entries === null) throw new SyntaxError("entries missing")
  return addStaleUntil(doc)
}

/**
 * Opens (or creates) the index and returns the store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: JsonStoreOptions): Effect.Effect<MetadataStore["Type"], MetadataError, Scope.Scope> =>
  Effect.gen(function*() {
    const filename = path.resolve(options.filename)
    const lockFile = `${filename}.lock`
    const lockTimeout = Duration.toMillis(options.lockTimeout ?? "10 seconds")
    const staleAfter = Duration.toMillis(options.staleLockAfter ?? "30 seconds")
    const definitions = new Map((options.tables ?? []).map((def) => [def.name, def]))
    const host = os.hostname()
    const derive = yield* NamespaceKey.load

    let state = new MemoryState(definitions)
    /** Identity of the file the state was loaded from or written to; `undefined` = must reload. */
    let stamp: string | null | undefined = undefined
    const warnings: Array<string> = []

    const load = () => {
      const current = stampOf(filename)
      if (current === stamp && stamp !== undefined) return
      const next = new MemoryState(definitions)
      if (current !== null) {
        const text = fs.readFileSync(filename, "utf8")
        let doc: Document
        try {
          doc = parse(text, derive)
        } catch (cause) {
          if (options.readOnly === true) {
            throw new MetadataError({
              method: "MetadataStoreJson.open",
              reason: "Corrupt",
              description: `the metadata file ${filename} is corrupt (${
                (cause as Error).message
              }); it was opened read-only and left as it is (a command that writes moves it aside and starts the cache empty)`,
              cause
            })
          }
          const aside = `${filename}.corrupt-${wallClock.unsafeCurrentTimeMillis()}`
          try {
            fs.renameSync(filename, aside)
          } catch (error) {
            // Another process moved it aside first.
            if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error
          }
          warnings.push(
            `cacheness: metadata file ${filename} is corrupt (${
              (cause as Error).message
            }); moved to ${aside}, starting empty`
          )
          state = next
          stamp = null
          return
        }
        if (doc.layout > LAYOUT_VERSION) {
          throw new MetadataError({
            method: "MetadataStoreJson.open",
            reason: "NewerLayout",
            description: `${filename} has metadata layout ${doc.layout}; this release reads up to ${LAYOUT_VERSION}`
          })
        }
        next.hits = doc.counters?.hits ?? 0
        next.misses = doc.counters?.misses ?? 0
        for (const [key, stored] of Object.entries(doc.entries)) {
          next.load({
            ...stored,
            key,
            inline: stored.inline === null ? null : new Uint8Array(Buffer.from(stored.inline, "base64"))
          })
        }
        for (const [p, [stat, hash]] of Object.entries(doc.fingerprints ?? {})) {
          next.fingerprints.set(p, { path: p, stat, hash })
        }
        for (const [key, [holder, until]] of Object.entries(doc.leases ?? {})) next.leases.set(key, { holder, until })
        for (const [name, rows] of Object.entries(doc.tables ?? {})) {
          const target = next.tables.byTable.get(name)
          if (target === undefined) continue // a table this process does not know: kept on disk only
          for (const [key, row] of Object.entries(rows)) if (next.rows.has(key)) target.set(key, row)
        }
        // Rows of tables this process did not register are carried over untouched on write.
        foreignTables = Object.fromEntries(Object.entries(doc.tables ?? {}).filter(([name]) => !definitions.has(name)))
      }
      state = next
      stamp = current
    }
    let foreignTables: Record<string, Record<string, Record<string, unknown>>> = {}

    const acquireLock = () => {
      const deadline = wallClock.unsafeCurrentTimeMillis() + lockTimeout
      for (;;) {
        try {
          const fd = fs.openSync(lockFile, "wx")
          fs.writeSync(fd, JSON.stringify({ pid: process.pid, host, time: wallClock.unsafeCurrentTimeMillis() }))
          fs.closeSync(fd)
          return
        } catch (cause) {
          if ((cause as NodeJS.ErrnoException).code !== "EEXIST") throw cause
        }
        let holder: { pid?: number; host?: string; time?: number } = {}
        let text = ""
        try {
          text = fs.readFileSync(lockFile, "utf8")
          holder = JSON.parse(text)
        } catch {
          // Being written or just released: try again.
        }
        const now = wallClock.unsafeCurrentTimeMillis()
        const dead = holder.host === host && typeof holder.pid === "number" && !isAlive(holder.pid)
        const old = typeof holder.time === "number" && now - holder.time > staleAfter
        if (dead || old) {
          // Re-read right before removing, so we never remove a lock taken meanwhile.
          try {
            if (fs.readFileSync(lockFile, "utf8") === text) {
              fs.rmSync(lockFile, { force: true })
              warnings.push(
                `cacheness: broke the ${
                  dead ? "abandoned" : "stale"
                } lock ${lockFile} (pid ${holder.pid} on ${holder.host})`
              )
            }
          } catch {
            // gone already
          }
          continue
        }
        if (now > deadline) {
          throw new MetadataError({
            method: "MetadataStoreJson.lock",
            reason: "Busy",
            description: `${lockFile} is held by pid ${holder.pid ?? "?"} on ${holder.host ?? "?"} since ${
              holder.time === undefined ? "?" : new Date(holder.time).toISOString()
            }; waited ${lockTimeout} ms. If that process is gone, delete the lock file.`
          })
        }
        sleepSync(2 + Math.floor(Math.random() * 5))
      }
    }

    const releaseLock = () => fs.rmSync(lockFile, { force: true })

    const write = () => {
      let text = serialise(state)
      if (Object.keys(foreignTables).length > 0) {
        const doc = JSON.parse(text)
        doc.tables = { ...doc.tables, ...foreignTables }
        text = JSON.stringify(doc)
      }
      const temp = `${filename}.${process.pid}.${Math.floor(Math.random() * 2 ** 32).toString(36)}.tmp`
      try {
        fs.writeFileSync(temp, text)
        fs.renameSync(temp, filename)
      } catch (cause) {
        fs.rmSync(temp, { force: true })
        throw cause
      }
      stamp = stampOf(filename)
    }

    const logWarnings = Effect.suspend(() =>
      warnings.length === 0
        ? Effect.void
        : Effect.forEach(warnings.splice(0), (w) => Effect.logWarning(w), { discard: true })
    )

    const fail = (method: string, reason: MetadataError["reason"]) => (cause: unknown) =>
      cause instanceof MetadataError
        ? cause
        : new MetadataError({
          method,
          reason,
          description: cause instanceof Error ? cause.message : String(cause),
          cause
        })

    /** Reads under the current file (reloading when another process changed it). */
    const read = <A>(method: string, f: () => A) =>
      Effect.zipLeft(Effect.try({ try: () => (load(), f()), catch: fail(method, "QueryFailed") }), logWarnings)

    /**
     * A change: lock, reload, apply, write, unlock. `f` must check before it changes anything;
     * when it returns an error nothing is written.
     */
    const mutate = <A>(method: string, f: () => A | MetadataError) =>
      Effect.zipLeft(
        Effect.try({
          try: () => {
            if (options.readOnly === true) {
              throw new MetadataError({
                method,
                reason: "Unsupported",
                description: `${filename} was opened read-only`
              })
            }
            acquireLock()
            try {
              load()
              const result = f()
              if (result instanceof MetadataError) throw result
              write()
              return result
            } catch (cause) {
              // The state may be ahead of the file now: reload before the next operation.
              stamp = undefined
              throw cause
            } finally {
              releaseLock()
            }
          },
          catch: fail(method, "WriteFailed")
        }),
        logWarnings
      )

    yield* Effect.try({
      try: () => {
        if (options.readOnly === true && !fs.existsSync(filename)) {
          throw new MetadataError({
            method: "MetadataStoreJson.open",
            reason: "OpenFailed",
            description: `${filename} does not exist`
          })
        }
        if (options.readOnly !== true) fs.mkdirSync(path.dirname(filename), { recursive: true })
        load()
      },
      catch: fail("MetadataStoreJson.open", "OpenFailed")
    })
    yield* logWarnings

    const accesses = new AccessBatch()

    const flush = Effect.suspend(() => {
      if (accesses.isEmpty) return Effect.void
      const taken = accesses.take()
      return mutate("MetadataStore.flush", () => {
        for (const [key, access] of taken.accesses) state.access(key, access.at, access.hits)
        if (taken.misses > 0) state.access(null, taken.missAt, taken.misses)
      }).pipe(Effect.tapError(() => Effect.sync(() => accesses.restore(taken))))
    })

    if (options.readOnly !== true) {
      yield* flush.pipe(
        Effect.catchAll((error) => Effect.logWarning("cacheness: could not write access statistics", error.message)),
        Effect.repeat(Schedule.spaced(options.flushInterval ?? "1 second")),
        Effect.withClock(daemonClock),
        Effect.interruptible,
        Effect.forkScoped
      )
    }
    yield* Effect.addFinalizer(() => Effect.ignoreLogged(flush))
    // A script that never closes the cache still gets its batched accesses written.
    yield* flushBeforeExit(flush, () => !accesses.isEmpty)

    return makeMetadataStore({
      backend: "json",
      lookup: (key) => read("MetadataStore.lookup", () => state.lookup(key)),
      probe: (key) => read("MetadataStore.probe", () => state.lookup(key)),
      upsert: (record, rows) => mutate("MetadataStore.upsert", () => state.upsert(record, rows)),
      lookupMany: (keys) => read("MetadataStore.lookupMany", () => keys.map((key) => state.lookup(key))),
      // One lock, one reload and one rewrite of the file for the whole batch; nothing is written
      // when an entry fails.
      upsertMany: (items) => mutate("MetadataStore.upsertMany", () => state.upsertMany(items)),
      remove: (filter) => mutate("MetadataStore.remove", () => state.remove(filter)),
      select: (filter) => Effect.zipRight(flush, read("MetadataStore.select", () => state.select(filter))),
      list: (listOptions) => Effect.zipRight(flush, read("MetadataStore.list", () => state.list(listOptions))),
      listEntries: (listOptions) =>
        Effect.zipRight(flush, read("MetadataStore.list", () => state.listEntries(listOptions))),
      touch: (key, expiresAt, now, resign) =>
        mutate("MetadataStore.touch", () => state.touch(key, expiresAt, now, resign)),
      recordAccess: (key, now) =>
        options.readOnly === true ? Effect.void : Effect.sync(() => accesses.record(key, now)),
      evict: (bytes) => Effect.zipRight(flush, mutate("MetadataStore.evict", () => state.evict(bytes))),
      totals: Effect.zipRight(flush, read("MetadataStore.totals", () => state.totals())),
      namespaceTotals: (namespace) => read("MetadataStore.namespaceTotals", () => state.namespaceTotals(namespace)),
      repairSize: (key, blobId, checksum, storedBytes) =>
        mutate("MetadataStore.repairSize", () => state.repairSize(key, blobId, checksum, storedBytes)),
      // The byte counter is derived from the rows on every load: recounting changes no file.
      recount: Effect.zipRight(flush, read("MetadataStore.recount", () => state.recount())),
      clear: mutate("MetadataStore.clear", () => state.clear()),
      flush,
      queryTable: (table, query) =>
        Effect.zipRight(flush, read("MetadataStore.queryTable", () => state.query(table, query))).pipe(
          Effect.flatMap((result) => result instanceof MetadataError ? Effect.fail(result) : Effect.succeed(result))
        ),
      sql: null,
      lookupFingerprints: (paths) => read("MetadataStore.lookupFingerprints", () => state.lookupFingerprints(paths)),
      saveFingerprints: (rows) =>
        rows.length === 0 ? Effect.void : mutate("MetadataStore.saveFingerprints", () => state.saveFingerprints(rows)),
      fingerprintPaths: (after, limit) =>
        read("MetadataStore.fingerprintPaths", () => state.fingerprintPaths(after, limit)),
      deleteFingerprints: (paths) =>
        paths.length === 0
          ? Effect.succeed(0)
          : mutate("MetadataStore.deleteFingerprints", () => state.deleteFingerprints(paths)),
      // Leases live in the file, taken under the lock: processes sharing the index see each other's.
      acquireLease: (key, holder, until, now) =>
        mutate("MetadataStore.acquireLease", () => state.acquireLease(key, holder, until, now)),
      acquireLeaseIfAbsent: (key, holder, until, now, liveAt) =>
        mutate("MetadataStore.acquireLease", () => state.acquireLeaseIfAbsent(key, holder, until, now, liveAt)),
      releaseLease: (key, holder) => mutate("MetadataStore.releaseLease", () => state.releaseLease(key, holder))
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: JsonStoreOptions): Layer.Layer<MetadataStore, MetadataError> =>
  Layer.scoped(MetadataStore, make(options))
