/**
 * The composition root: the backends a `CacheConfig` names, assembled under the engine
 * (`layer`, `layerMemory`, `layerConfig`, `CacheLive`, and the CLI's `layerReadOnly`). The only
 * module of the engine that imports backends.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as BlobStoreFileSystem from "../blob/fileSystem.js"
import * as BlobStoreMemory from "../blob/memory.js"
import * as BlobStorePg from "../blob/pg.js"
import * as BlobStoreS3 from "../blob/s3.js"
import { BlobStore } from "../blob/service.js"
import * as CodecDefault from "../codec/registry.js"
import { Hasher, PathFingerprints } from "../key/service.js"
import * as HasherXxhash from "../key/xxhash.js"
import * as MetadataStoreJson from "../metadata/json.js"
import * as MetadataStoreMemory from "../metadata/memory.js"
import * as MetadataStorePg from "../metadata/pg.js"
import { MetadataStore } from "../metadata/service.js"
import * as MetadataStoreSqlite from "../metadata/sqlite.js"
import type { CacheConfig } from "../schema/CacheConfig.js"
import { resolveConfig } from "./config.js"
import { make } from "./make.js"
import { Cache, type CacheError, ConfigError, type ResolvedConfig } from "./service.js"

/**
 * Marks the directory as a cache, so backup tools skip it (https://bford.info/cachedir/). With
 * `permissions: "private"` the directory becomes 0700 and the metadata database is created 0600
 * before SQLite opens it (SQLite gives its -wal and -shm files the database file's mode).
 */
const markDirectory = (directory: string, permissions: ResolvedConfig["permissions"]) =>
  Effect.try({
    try: () => {
      const isPrivate = permissions === "private"
      fs.mkdirSync(directory, { recursive: true, mode: isPrivate ? 0o700 : undefined })
      if (isPrivate) {
        fs.chmodSync(directory, 0o700)
        const database = path.join(directory, "cacheness.db")
        fs.closeSync(fs.openSync(database, "a", 0o600))
        fs.chmodSync(database, 0o600)
      }
      const tag = path.join(directory, "CACHEDIR.TAG")
      if (!fs.existsSync(tag)) {
        fs.writeFileSync(
          tag,
          "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by cacheness.\n# For information about cache directory tags see https://bford.info/cachedir/\n",
          { mode: isPrivate ? 0o600 : undefined }
        )
      }
    },
    catch: (cause) =>
      new ConfigError({
        reason: "Invalid",
        field: "directory",
        description: `cannot create ${directory}: ${String(cause)}`,
        cause
      })
  })

const metadataLayer = (config: ResolvedConfig): Layer.Layer<MetadataStore, CacheError> => {
  const tables = config.metadataTables.map((t) => t.definition)
  switch (config.metadataBackend) {
    case "memory":
      return tables.length === 0 ? MetadataStoreMemory.layer : MetadataStoreMemory.layerWith({ tables })
    case "sqlite":
      return MetadataStoreSqlite.layer({
        filename: path.join(config.directory!, "cacheness.db"),
        tables,
        readOnly: config.readOnly
      })
    case "json":
      return MetadataStoreJson.layer({
        filename: path.join(config.directory!, "cacheness.json"),
        tables,
        readOnly: config.readOnly
      })
    case "postgres": {
      const pg = config.postgres!
      // A memory tier with a staleness window trusts PostgreSQL's change count (LISTEN/NOTIFY);
      // at maxStaleness 0 it checks every hit's row instead and needs no listener.
      return MetadataStorePg.layer({
        ...pg,
        tables,
        changeNotifications: config.memory != null && config.memory.maxStaleness > 0
      })
    }
  }
}

const blobLayer = (config: ResolvedConfig): Layer.Layer<BlobStore, CacheError> => {
  switch (config.blobs) {
    case "memory":
      return BlobStoreMemory.layer
    case "filesystem":
      return BlobStoreFileSystem.layer({
        directory: path.join(config.directory!, "blobs"),
        private: config.permissions === "private",
        readOnly: config.readOnly
      })
    case "postgres": {
      const pg = config.postgres!
      return BlobStorePg.layer({
        url: pg.url,
        schema: pg.schema,
        connectTimeout: pg.connectTimeout,
        idleTimeout: pg.idleTimeout
      })
    }
    case "s3": {
      const s3 = config.s3!
      return BlobStoreS3.layer({
        bucket: s3.bucket,
        prefix: s3.prefix,
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: s3.forcePathStyle,
        multipartThreshold: s3.multipartThreshold,
        credentials: s3.credentials
      })
    }
  }
}

/** The metadata store's fingerprint table, as the optional service the Hasher looks for. */
const fingerprintsLayer: Layer.Layer<PathFingerprints, never, MetadataStore> = Layer.effect(
  PathFingerprints,
  Effect.map(MetadataStore, (store) => ({ lookup: store.lookupFingerprints, save: store.saveFingerprints }))
)

/** The Hasher with path options, and the metadata store it shares with the cache. */
const hasherAndMetadata = (config: ResolvedConfig): Layer.Layer<Hasher | MetadataStore, CacheError> => {
  const hasher = HasherXxhash.layerWith({
    hashPathContent: config.hashPathContent,
    fingerprints: config.pathHashing.fingerprints,
    concurrency: config.pathHashing.concurrency,
    parallelFiles: config.pathHashing.parallelFiles,
    parallelBytes: config.pathHashing.parallelBytes,
    onProgress: config.pathHashing.onProgress
  })
  const metadata = metadataLayer(config)
  return config.hashPathContent && config.pathHashing.fingerprints
    ? Layer.provideMerge(hasher, Layer.provideMerge(fingerprintsLayer, metadata))
    : Layer.merge(hasher, metadata)
}

const fromResolved = (config: ResolvedConfig): Layer.Layer<Cache, CacheError> =>
  Layer.scoped(Cache, make(config)).pipe(
    Layer.provide(Layer.mergeAll(
      hasherAndMetadata(config),
      CodecDefault.layer({ compression: config.compression, handlers: config.handlers, tables: config.tables }),
      blobLayer(config)
    )),
    Layer.provide(
      config.directory === null || config.readOnly === true
        ? Layer.empty
        : Layer.effectDiscard(markDirectory(config.directory, config.permissions))
    )
  )

/**
 * The cache a configuration describes, opened for looking only (`cacheness stats`, `list`, …):
 * nothing is created, migrated, recovered, cleaned up or recorded, and writes fail. Internal to
 * the CLI; not re-exported.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerReadOnly = (config?: CacheConfig): Layer.Layer<Cache, CacheError> =>
  Layer.unwrapEffect(
    Effect.map(resolveConfig(config, { memory: false }), (resolved) => fromResolved({ ...resolved, readOnly: true }))
  )

/**
 * The cache a configuration describes; by default SQLite metadata and files in `./.cacheness`.
 * The configuration is validated and paths resolved when the layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config?: CacheConfig): Layer.Layer<Cache, CacheError> =>
  Layer.unwrapEffect(Effect.map(resolveConfig(config, { memory: false }), fromResolved))

/**
 * A cache with no disk: memory metadata and blobs, same semantics, TestClock-driven TTL.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (
  config?: Omit<CacheConfig, "directory" | "metadataBackend" | "blobs">
): Layer.Layer<Cache, CacheError> =>
  Layer.unwrapEffect(
    Effect.map(resolveConfig({ ...config, metadataBackend: "memory", blobs: "memory" }, { memory: true }), fromResolved)
  )

const S3_ENVIRONMENT = Config.all({
  bucket: Config.option(Config.nonEmptyString("CACHENESS_S3_BUCKET")),
  prefix: Config.option(Config.string("CACHENESS_S3_PREFIX")),
  endpoint: Config.option(Config.nonEmptyString("CACHENESS_S3_ENDPOINT")),
  region: Config.option(Config.nonEmptyString("CACHENESS_S3_REGION")),
  forcePathStyle: Config.option(Config.boolean("CACHENESS_S3_FORCE_PATH_STYLE")),
  accessKeyId: Config.option(Config.redacted(Config.nonEmptyString("CACHENESS_S3_ACCESS_KEY_ID"))),
  secretAccessKey: Config.option(Config.redacted(Config.nonEmptyString("CACHENESS_S3_SECRET_ACCESS_KEY"))),
  sessionToken: Config.option(Config.redacted(Config.nonEmptyString("CACHENESS_S3_SESSION_TOKEN")))
})

/**
 * The `s3` settings `CACHENESS_S3_BUCKET`, `_PREFIX`, `_ENDPOINT`, `_REGION`, `_FORCE_PATH_STYLE`,
 * `_ACCESS_KEY_ID`, `_SECRET_ACCESS_KEY` and `_SESSION_TOKEN` give (through Effect `Config`), laid
 * over `base`; `base` itself when none is set. The secrets stay `Redacted`.
 *
 * @since 0.1.0
 * @category configuration
 */
export const s3FromEnvironment = (
  base: CacheConfig["s3"]
): Effect.Effect<CacheConfig["s3"], ConfigError> =>
  Effect.gen(function*() {
    const env = yield* Effect.mapError(
      S3_ENVIRONMENT,
      (cause) => new ConfigError({ reason: "Invalid", field: "environment", description: String(cause), cause })
    )
    const { accessKeyId, secretAccessKey, sessionToken, ...rest } = env
    if (Option.isSome(accessKeyId) !== Option.isSome(secretAccessKey)) {
      return yield* new ConfigError({
        reason: "Invalid",
        field: "environment",
        description: "CACHENESS_S3_ACCESS_KEY_ID and CACHENESS_S3_SECRET_ACCESS_KEY are set together or not at all"
      })
    }
    const fields: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(rest) as Array<[string, Option.Option<unknown>]>) {
      if (Option.isSome(value)) fields[name] = value.value
    }
    if (Option.isSome(accessKeyId) && Option.isSome(secretAccessKey)) {
      fields.credentials = {
        accessKeyId: accessKeyId.value,
        secretAccessKey: secretAccessKey.value,
        ...(Option.isSome(sessionToken) ? { sessionToken: sessionToken.value } : {})
      }
    }
    if (Object.keys(fields).length === 0) return base
    // A partial environment over no base lacks `bucket`: the schema then names `s3.bucket`.
    return { ...base, ...fields } as NonNullable<CacheConfig["s3"]>
  })

const POSTGRES_ENVIRONMENT = Config.all({
  url: Config.option(Config.redacted(Config.nonEmptyString("CACHENESS_POSTGRES_URL"))),
  schema: Config.option(Config.nonEmptyString("CACHENESS_POSTGRES_SCHEMA"))
})

/**
 * The `postgres` settings `CACHENESS_POSTGRES_URL` (read as `Redacted`: it may hold a password)
 * and `CACHENESS_POSTGRES_SCHEMA` give, laid over `base`; `base` itself when neither is set.
 *
 * @since 0.1.0
 * @category configuration
 */
export const postgresFromEnvironment = (
  base: CacheConfig["postgres"]
): Effect.Effect<CacheConfig["postgres"], ConfigError> =>
  Effect.gen(function*() {
    const env = yield* Effect.mapError(
      POSTGRES_ENVIRONMENT,
      (cause) => new ConfigError({ reason: "Invalid", field: "environment", description: String(cause), cause })
    )
    const fields: Record<string, unknown> = {}
    if (Option.isSome(env.url)) fields.url = env.url.value
    if (Option.isSome(env.schema)) fields.schema = env.schema.value
    if (Object.keys(fields).length === 0) return base
    // A schema alone over no base lacks `url`: the schema then names `postgres.url`.
    return { ...base, ...fields } as NonNullable<CacheConfig["postgres"]>
  })

/**
 * Reads `CACHENESS_DIR`, `CACHENESS_DEFAULT_TTL`, `CACHENESS_MAX_SIZE`,
 * `CACHENESS_METADATA_BACKEND`, `CACHENESS_POSTGRES_URL`, `CACHENESS_POSTGRES_SCHEMA` and the
 * `CACHENESS_S3_*` variables (see `s3FromEnvironment`)
 * through Effect `Config`; `overrides` fill what the environment leaves unset. `none` as TTL or
 * size means never / unlimited.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (overrides?: CacheConfig): Layer.Layer<Cache, CacheError> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const nullable = (name: string) =>
      Config.option(Config.string(name)).pipe(
        Config.map(Option.map((s): string | null => /^(none|null|never|unlimited)$/i.test(s.trim()) ? null : s.trim()))
      )
    const env = yield* Config.all({
      directory: Config.option(Config.string("CACHENESS_DIR")),
      defaultTtl: nullable("CACHENESS_DEFAULT_TTL"),
      maxSize: nullable("CACHENESS_MAX_SIZE"),
      metadataBackend: Config.option(Config.string("CACHENESS_METADATA_BACKEND"))
    }).pipe(
      Effect.mapError((cause) =>
        new ConfigError({ reason: "Invalid", field: "environment", description: String(cause), cause })
      )
    )
    const fromEnv: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(env)) {
      if (Option.isSome(value)) {
        // A number of milliseconds / bytes in the environment arrives as a string.
        fromEnv[name] = typeof value.value === "string" && /^\d+$/.test(value.value) ? Number(value.value) : value.value
      }
    }
    const s3 = yield* s3FromEnvironment(overrides?.s3)
    if (s3 !== undefined) fromEnv.s3 = s3
    const postgres = yield* postgresFromEnvironment(overrides?.postgres)
    if (postgres !== undefined) fromEnv.postgres = postgres
    const config = yield* resolveConfig({ ...overrides, ...fromEnv } as CacheConfig, { memory: false })
    return fromResolved(config)
  }))

/**
 * The embedded default: SQLite metadata and files in `CACHENESS_DIR` or `./.cacheness`.
 *
 * @since 0.1.0
 * @category layers
 */
export const CacheLive: Layer.Layer<Cache, CacheError> = layerConfig()
