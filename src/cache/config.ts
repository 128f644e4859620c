import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as path from "node:path"
import * as Compression from "../codec/compression.js"
import * as Parquet from "../codec/formats/parquet.js"
import { isValidFormatId } from "../codec/header.js"
import { PATH_HASHING_DEFAULTS } from "../key/pathHashing.js"
import { CacheConfig, parseSize } from "../schema/CacheConfig.js"
import * as Validate from "../shared/validate.js"
import * as MemoryTier from "./memoryTier.js"
import { ConfigError, type ResolvedConfig, type ResolvedS3 } from "./service.js"
import { keyBytes } from "./signing.js"

const decode = Schema.decodeUnknownEither(CacheConfig, { onExcessProperty: "error" })

/**
 * A codec this runtime cannot run (zstd before Node 22.15) is a configuration error when the
 * layer is built, not a failure of every later put. Tables written as Parquet are the exception:
 * parquet-wasm compresses their pages itself, with any codec.
 */
const unavailableCodec = (
  compression: CacheConfig["compression"],
  tables: CacheConfig["tables"]
): ConfigError | undefined => {
  const check = (field: string, codec: string | undefined) =>
    codec === undefined || Compression.byName[codec as keyof typeof Compression.byName]?.available !== false
      ? undefined
      : new ConfigError({
        reason: "Invalid",
        field,
        description:
          `${codec} is not available in this runtime (Node ${process.versions.node}); choose lz4, gzip, brotli or none`
      })
  const top = check("compression.codec", compression?.codec)
  if (top !== undefined) return top
  for (const [kind, settings] of Object.entries(compression?.byKind ?? {})) {
    if (kind === "table" && tables === "parquet") continue
    const problem = check(`compression.byKind.${kind}.codec`, settings?.codec)
    if (problem !== undefined) return problem
  }
  return undefined
}

/** `blobs: "s3"` needs its bucket; a bucket beside other blobs is a mistake, not a preference. */
const checkS3 = (blobs: string, s3: CacheConfig["s3"]): ConfigError | undefined => {
  if (blobs === "s3" && s3 === undefined) {
    return new ConfigError({
      reason: "Invalid",
      field: "s3.bucket",
      description: `blobs: "s3" needs s3: { bucket } (or CACHENESS_S3_BUCKET)`
    })
  }
  if (blobs !== "s3" && s3 !== undefined) {
    return new ConfigError({
      reason: "Invalid",
      field: "s3",
      description: `is set but blobs is ${JSON.stringify(blobs)}; use blobs: "s3" or remove s3`
    })
  }
  if (s3?.endpoint !== undefined && !URL.canParse(s3.endpoint)) {
    return new ConfigError({
      reason: "Invalid",
      field: "s3.endpoint",
      description: `not a URL: ${JSON.stringify(s3.endpoint)}`
    })
  }
  const threshold = s3?.multipartThreshold === undefined ? undefined : parseSize(s3.multipartThreshold)
  if (threshold !== undefined && (Option.isNone(threshold) || threshold.value < 5 * 1024 * 1024)) {
    return new ConfigError({
      reason: "Invalid",
      field: "s3.multipartThreshold",
      description: `must be at least 5 MiB (S3's smallest part), got ${JSON.stringify(s3!.multipartThreshold)}`
    })
  }
  return undefined
}

const redact = (secret: string | Redacted.Redacted<string>) =>
  typeof secret === "string" ? Redacted.make(secret) : secret

const resolveS3 = (s3: NonNullable<CacheConfig["s3"]>): ResolvedS3 => ({
  bucket: s3.bucket,
  prefix: s3.prefix ?? "",
  endpoint: s3.endpoint,
  region: s3.region,
  forcePathStyle: s3.forcePathStyle ?? false,
  multipartThreshold: s3.multipartThreshold === undefined
    ? undefined
    : Option.getOrUndefined(parseSize(s3.multipartThreshold)),
  credentials: s3.credentials === undefined ? undefined : {
    accessKeyId: redact(s3.credentials.accessKeyId),
    secretAccessKey: redact(s3.credentials.secretAccessKey),
    ...(s3.credentials.sessionToken === undefined ? {} : { sessionToken: redact(s3.credentials.sessionToken) })
  }
})

const millis = (input: Duration.DurationInput): number => Duration.toMillis(Duration.decode(input))

/**
 * Validates a `CacheConfig` and applies defaults. Paths are resolved here, when a layer is built,
 * never at import. An invalid field fails with a `ConfigError` naming it.
 */
export const resolveConfig = (
  input: CacheConfig | undefined,
  defaults: { readonly memory: boolean }
): Effect.Effect<ResolvedConfig, ConfigError> =>
  Effect.suspend(() => {
    let decoded: ReturnType<typeof decode>
    try {
      decoded = decode(input ?? {})
    } catch (cause) {
      // A getter or Proxy that throws while the schema reads it.
      return Effect.fail(
        new ConfigError({
          reason: "Invalid",
          field: "config",
          description: `could not be read: ${Validate.show(cause)}`,
          cause
        })
      )
    }
    if (decoded._tag === "Left") {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
      return Effect.fail(
        new ConfigError({
          reason: "Invalid",
          field: issue.path.length === 0 ? "config" : issue.path.join("."),
          description: issue.message
        })
      )
    }
    const config = decoded.right
    const metadataBackend = config.metadataBackend ?? (defaults.memory ? "memory" : "sqlite")
    const blobs = config.blobs ??
      (config.s3 !== undefined ? "s3" : metadataBackend === "memory" ? "memory" : "filesystem")
    const s3Problem = checkS3(blobs, config.s3)
    if (s3Problem !== undefined) return Effect.fail(s3Problem)
    const needsDirectory = metadataBackend === "sqlite" || metadataBackend === "json" || blobs === "filesystem"
    if ((metadataBackend === "postgres" || blobs === "postgres") && config.postgres === undefined) {
      return Effect.fail(
        new ConfigError({
          reason: "Invalid",
          field: "postgres.url",
          description: "the postgres backends need postgres.url"
        })
      )
    }
    const signingKey = config.signing === undefined ? null : keyBytes(config.signing.key)
    if (config.signing !== undefined && signingKey === null) {
      return Effect.fail(
        new ConfigError({
          reason: "Invalid",
          field: "signing.key",
          description: "must be a non-empty string or bytes (or a Redacted of one)"
        })
      )
    }
    const compressionProblem = unavailableCodec(config.compression, config.tables)
    if (compressionProblem !== undefined) return Effect.fail(compressionProblem)
    const maxSize = config.maxSize === undefined
      ? parseSize("5 GB")
      : config.maxSize === null
      ? Option.none()
      : parseSize(config.maxSize)
    // Checked on the input: the schema accepts any decodable duration, and decoding clamps
    // -5, NaN and "-1 hour" to 0, a cache that keeps nothing.
    const defaultTtl = config.defaultTtl === undefined
      ? millis("24 hours")
      : Validate.ttl("defaultTtl", config.defaultTtl)
    if (defaultTtl instanceof ConfigError) return Effect.fail(defaultTtl)
    const cleanupInterval = Validate.duration("cleanupInterval", config.cleanupInterval ?? "10 minutes")
    if (cleanupInterval instanceof ConfigError) return Effect.fail(cleanupInterval)
    if (Option.isSome(maxSize) && maxSize.value === 0) {
      return Effect.fail(
        new ConfigError({
          reason: "Invalid",
          field: "maxSize",
          description: "0 bytes keeps nothing; give a positive size, or null for unlimited"
        })
      )
    }
    const inlineThreshold = Option.getOrElse(parseSize(config.inlineThreshold ?? "16 KiB"), () => 16 * 1024)
    if (config.inlineThreshold !== undefined && Option.isSome(maxSize) && inlineThreshold > maxSize.value) {
      return Effect.fail(
        new ConfigError({
          reason: "Invalid",
          field: "inlineThreshold",
          description:
            `${inlineThreshold} bytes is more than maxSize (${maxSize.value} bytes): an inline value could not be kept`
        })
      )
    }
    const memory = MemoryTier.resolve(config.memory)
    if (memory instanceof ConfigError) return Effect.fail(memory)
    const resolved: ResolvedConfig = {
      directory: needsDirectory ? path.resolve(config.directory ?? "./.cacheness") : null,
      defaultTtl: defaultTtl ?? null,
      maxSize: Option.getOrNull(maxSize),
      metadataBackend,
      blobs,
      cleanupOnOpen: config.cleanupOnOpen ?? true,
      cleanupInterval: cleanupInterval ?? 0,
      verifyIntegrity: config.verifyIntegrity ?? true,
      storeKeyParams: config.storeKeyParams ?? true,
      compression: {
        codec: config.compression?.codec ?? "lz4",
        level: config.compression?.level,
        shuffle: config.compression?.shuffle ?? true,
        minSize: config.compression?.minSize,
        minSavings: config.compression?.minSavings,
        byKind: config.compression?.byKind
      },
      handlers: config.handlers ?? [],
      tables: config.tables ?? "ipc",
      // The default never exceeds a small maxSize (an explicit one may not: see above).
      inlineThreshold: Option.isSome(maxSize) ? Math.min(inlineThreshold, maxSize.value) : inlineThreshold,
      hashPathContent: config.hashPathContent ?? true,
      signing: signingKey === null ? null : { key: Redacted.make(signingKey) },
      permissions: config.permissions ?? "default",
      postgres: config.postgres === undefined ? null : {
        url: typeof config.postgres.url === "string" ? Redacted.make(config.postgres.url) : config.postgres.url,
        schema: config.postgres.schema ?? "public",
        maxConnections: config.postgres.maxConnections,
        idleTimeout: config.postgres.idleTimeout === undefined ? undefined : millis(config.postgres.idleTimeout),
        connectTimeout: config.postgres.connectTimeout === undefined
          ? undefined
          : millis(config.postgres.connectTimeout)
      },
      s3: blobs === "s3" ? resolveS3(config.s3!) : null,
      metadataTables: config.metadataTables ?? [],
      pathHashing: {
        fingerprints: config.pathHashing?.fingerprints ?? true,
        concurrency: config.pathHashing?.concurrency ?? PATH_HASHING_DEFAULTS.concurrency,
        parallelFiles: config.pathHashing?.parallelFiles ?? PATH_HASHING_DEFAULTS.parallelFiles,
        parallelBytes: config.pathHashing?.parallelBytes === undefined
          ? PATH_HASHING_DEFAULTS.parallelBytes
          : Option.getOrElse(parseSize(config.pathHashing.parallelBytes), () => PATH_HASHING_DEFAULTS.parallelBytes),
        onProgress: config.pathHashing?.onProgress
      },
      memory
    }
    const names = resolved.metadataTables.map((t) => t.name)
    const duplicate = names.find((name, i) => names.indexOf(name) !== i)
    if (duplicate !== undefined) {
      return Effect.fail(
        new ConfigError({
          reason: "Invalid",
          field: "metadataTables",
          description: `table ${duplicate} is registered twice`
        })
      )
    }
    for (const [i, handler] of resolved.handlers.entries()) {
      if (!isValidFormatId(handler.format) || !Number.isSafeInteger(handler.version) || handler.version < 0) {
        return Effect.fail(
          new ConfigError({
            reason: "Invalid",
            field: `handlers.${i}`,
            description: `format id must be 1–255 printable ASCII characters and version a non-negative integer (got ${
              JSON.stringify(handler.format)
            } version ${handler.version})`
          })
        )
      }
    }
    if (resolved.tables === "parquet") {
      // Loaded now (~0.3 s, once per process) so a missing package is a ConfigError here rather
      // than a CodecError on the first put.
      const parquet = Parquet.load()
      if (parquet instanceof Error) {
        return Effect.fail(
          new ConfigError({
            reason: "Invalid",
            field: "tables",
            description: `"parquet" needs the parquet-wasm package, which could not be loaded: ${parquet.message}`,
            cause: parquet
          })
        )
      }
    }
    if (resolved.cleanupInterval <= 0) {
      return Effect.fail(
        new ConfigError({ reason: "Invalid", field: "cleanupInterval", description: "must be positive" })
      )
    }
    return Effect.succeed(resolved)
  })
