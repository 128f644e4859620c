/**
 * `BlobStore` in an S3-compatible bucket (AWS S3, MinIO, R2, GCS's S3 API): the blob `id` is the
 * object `${prefix}${id}`.
 *
 * Writes are atomic by S3's own rule: an object appears whole when its PutObject (or its
 * multipart upload's CompleteMultipartUpload) succeeds, never in part. A failed multipart upload
 * is aborted, so its parts are not left behind; an upload abandoned by a crashed process is
 * invisible to `get` and `list` (configure a lifecycle rule to expire incomplete uploads).
 *
 * `@aws-sdk/client-s3` and `@aws-sdk/lib-storage` are optional peer dependencies, imported when a
 * store is built: a program that never uses S3 runs without them installed.
 *
 * The SDK's own retries are turned off (`maxAttempts: 1`) so one policy applies: throttling
 * (SlowDown, 429, 503), other 5xx answers and dropped connections are retried with an exponential,
 * jittered, bounded `Schedule`. Every call is idempotent (a put writes the whole object again).
 *
 * The credentials need `s3:ListBucket` on the bucket besides `s3:GetObject`, `s3:PutObject` and
 * `s3:DeleteObject` under the prefix: without it S3 answers a read of a missing object with 403
 * rather than 404, which would make every miss a `PermissionDenied`.
 *
 * @since 0.1.0
 */
import type * as S3 from "@aws-sdk/client-s3"
import type * as S3Storage from "@aws-sdk/lib-storage"
import * as Config from "effect/Config"
import type * as ConfigErrorModule from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { ConfigError } from "../errors.js"
import * as BufferPool from "../shared/bufferPool.js"
import * as Validate from "../shared/validate.js"
import * as BlobId from "./blobId.js"
import { BlobStore, make as makeBlobStore, StorageError } from "./service.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Credentials {
  readonly accessKeyId: string | Redacted.Redacted<string>
  readonly secretAccessKey: string | Redacted.Redacted<string>
  readonly sessionToken?: string | Redacted.Redacted<string> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly bucket: string
  /** Prepended to every blob id, e.g. `"cacheness/"`; default `""`. */
  readonly prefix?: string | undefined
  /** A non-AWS server, e.g. `"http://127.0.0.1:9000"`; default the SDK's AWS endpoint. */
  readonly endpoint?: string | undefined
  /** Default the SDK's resolution (`AWS_REGION`, profile); `"us-east-1"` when `endpoint` is set. */
  readonly region?: string | undefined
  /** `bucket` in the path rather than the host name (MinIO, s3rver); default false. */
  readonly forcePathStyle?: boolean | undefined
  /** Default the SDK's provider chain (environment, profile, instance role). */
  readonly credentials?: Credentials | undefined
  /** Values of at least this many bytes go up as a multipart upload of parts this size; default 16 MiB, at least 5 MiB. */
  readonly multipartThreshold?: number | undefined
  /** Parts of one multipart upload in flight, and batches of `clear` in flight; default 4. */
  readonly concurrency?: number | undefined
}

/** S3's smallest part (except the last) of a multipart upload. */
const MIN_PART_SIZE = 5 * 1024 * 1024
/** S3's largest number of parts of one upload. */
const MAX_PARTS = 10_000
/** S3's largest batch of one DeleteObjects. */
const DELETE_BATCH = 1000

const DEFAULT_THRESHOLD = 16 * 1024 * 1024
const DEFAULT_CONCURRENCY = 4

/** The line of the SDK the store is tested with; the message of a missing package names it. */
const SDK_RANGE = "^3.1175.0"

/**
 * @since 0.1.0
 * @category loading
 */
export const advice =
  `S3 blobs need the optional peer dependencies @aws-sdk/client-s3 and @aws-sdk/lib-storage (${SDK_RANGE}): npm install @aws-sdk/client-s3@${SDK_RANGE} @aws-sdk/lib-storage@${SDK_RANGE}`

/** What `make` imports; a test points them at modules that do not exist. */
let specifiers = { client: "@aws-sdk/client-s3", storage: "@aws-sdk/lib-storage" }

/**
 * @since 0.1.0
 * @category testing
 */
export const unsafeSetSpecifiers = (modules: { readonly client: string; readonly storage: string }): void => {
  specifiers = { ...modules }
}

interface Sdk {
  readonly client: typeof S3
  readonly storage: typeof S3Storage
}

const load: Effect.Effect<Sdk, ConfigError> = Effect.suspend(() => {
  const { client, storage } = specifiers
  const one = <A>(module: string) =>
    Effect.tryPromise({
      try: () => import(module) as Promise<A>,
      catch: (cause) =>
        new ConfigError({
          reason: "Unsupported",
          field: "s3",
          description: `${advice} (${module} could not be loaded)`,
          cause
        })
    })
  return Effect.all({ client: one<typeof S3>(client), storage: one<typeof S3Storage>(storage) })
})

const invalid = (field: string, description: string) => new ConfigError({ reason: "Invalid", field, description })

const requiredString = (field: string, input: unknown): string | ConfigError =>
  typeof input === "string" && input.length > 0
    ? input
    : invalid(field, `must be a non-empty string, got ${Validate.show(input)}`)

/** A secret: a non-empty string or a `Redacted` one, unwrapped only when the client is built. */
const secret = (field: string, input: unknown): string | ConfigError => {
  if (!Redacted.isRedacted(input)) return requiredString(field, input)
  const value: unknown = Redacted.value(input)
  return typeof value === "string" && value.length > 0
    ? value
    : invalid(field, "must be a Redacted non-empty string")
}

const optionalSecret = (field: string, input: unknown): string | undefined | ConfigError =>
  input === undefined ? undefined : secret(field, input)

/** The SDK's plain form; the strings never leave the client. */
interface PlainCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string
}

const credentials = (field: string, input: unknown): PlainCredentials | undefined | ConfigError => {
  if (input === undefined) return undefined
  const checked = Validate.fields(field, input, {
    accessKeyId: secret,
    secretAccessKey: secret,
    sessionToken: optionalSecret
  })
  if (checked instanceof ConfigError) return checked
  return checked.sessionToken === undefined
    ? { accessKeyId: checked.accessKeyId, secretAccessKey: checked.secretAccessKey }
    : { accessKeyId: checked.accessKeyId, secretAccessKey: checked.secretAccessKey, sessionToken: checked.sessionToken }
}

const positive = (field: string, input: unknown): number | undefined | ConfigError => {
  const n = Validate.optionalCount(field, input)
  return n === 0 ? invalid(field, "must be at least 1") : n
}

const threshold = (field: string, input: unknown): number | undefined | ConfigError => {
  const n = Validate.optionalCount(field, input)
  return typeof n === "number" && n < MIN_PART_SIZE
    ? invalid(field, `must be at least ${MIN_PART_SIZE} (5 MiB, S3's smallest part), got ${n}`)
    : n
}

const endpoint = (field: string, input: unknown): string | undefined | ConfigError => {
  if (input === undefined) return undefined
  if (typeof input !== "string") return invalid(field, `must be a URL string, got ${Validate.show(input)}`)
  try {
    new URL(input)
    return input
  } catch {
    return invalid(field, `not a URL: ${Validate.show(input)}`)
  }
}

/** The options, checked: unknown fields and wrong types are a `ConfigError` naming `s3.field`. */
const checkOptions = (input: unknown) =>
  Validate.fields("s3", input, {
    bucket: requiredString,
    prefix: Validate.optionalString,
    endpoint,
    region: Validate.optionalString,
    forcePathStyle: Validate.optionalBoolean,
    credentials,
    multipartThreshold: threshold,
    concurrency: positive
  })

type StorageReason = StorageError["reason"]

interface SdkFailure {
  readonly name?: string
  readonly Code?: string
  readonly code?: string
  readonly message?: string
  readonly $metadata?: { readonly httpStatusCode?: number }
  readonly $retryable?: { readonly throttling?: boolean }
}

const failure = (cause: unknown): SdkFailure => typeof cause === "object" && cause !== null ? cause as SdkFailure : {}

const statusOf = (cause: unknown): number | undefined => failure(cause).$metadata?.httpStatusCode

const nameOf = (cause: unknown): string | undefined => {
  const f = failure(cause)
  return f.name ?? f.Code
}

const THROTTLING = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "ServiceUnavailable",
  "InternalError"
])

/** A connection refused, reset or timed out: the server restarting, a load balancer dropping us. */
const NETWORK = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "TimeoutError"])

const isTransient = (cause: unknown): boolean => {
  const status = statusOf(cause)
  if (status === 429 || (status !== undefined && status >= 500)) return true
  const name = nameOf(cause)
  if (name !== undefined && THROTTLING.has(name)) return true
  if (failure(cause).$retryable?.throttling === true) return true
  const code = failure(cause).code
  return (code !== undefined && NETWORK.has(code)) || (name !== undefined && NETWORK.has(name))
}

/**
 * Up to 4 retries, 100 ms apart doubling, jittered (so many clients throttled at once do not
 * return at once): about 1.5 s before a call fails. Through `Clock`, so a test clock drives it.
 */
const RETRY = Schedule.exponential("100 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(4)))

const PERMISSION = new Set([
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "AllAccessDisabled",
  "ExpiredToken",
  "InvalidToken"
])

const toStorageError = (method: string, fallback: StorageReason, id?: string) => (cause: unknown): StorageError => {
  const name = nameOf(cause)
  const status = statusOf(cause)
  const reason: StorageReason = status === 403 || (name !== undefined && PERMISSION.has(name))
    ? "PermissionDenied"
    : name === "EntityTooLarge"
    ? "TooLarge"
    : fallback
  const message = cause instanceof Error ? cause.message : Validate.show(cause)
  const description = name !== undefined && name !== "Error" && !message.startsWith(name)
    ? `${name}: ${message}`
    : message
  return new StorageError({
    reason,
    method,
    id,
    description: status === undefined ? description : `${description} (HTTP ${status})`,
    cause
  })
}

const isNotFound = (cause: unknown): boolean => {
  const name = nameOf(cause)
  return name === "NoSuchKey" || name === "NotFound" || (statusOf(cause) === 404 && name !== "NoSuchBucket")
}

/**
 * A body of known length read into one buffer from `BufferPool`, which the cache gives back once
 * the value decoded from it no longer needs it (as the file store's reads do); otherwise the
 * SDK's own collection.
 */
const readBody = async (
  body: NonNullable<S3.GetObjectCommandOutput["Body"]>,
  length: number | undefined
): Promise<Uint8Array> => {
  const stream = body as unknown as AsyncIterable<Uint8Array>
  if (length === undefined || typeof stream[Symbol.asyncIterator] !== "function") return body.transformToByteArray()
  const buffer = BufferPool.take(length)
  let filled = 0
  try {
    for await (const chunk of stream) {
      if (filled + chunk.byteLength > length) throw new Error(`the object is longer than its Content-Length ${length}`)
      buffer.set(chunk, filled)
      filled += chunk.byteLength
    }
  } catch (cause) {
    BufferPool.give(buffer)
    throw cause
  }
  // A short body is a connection dropped mid-read (the SDK does not check): retried like one.
  if (filled !== length) {
    BufferPool.give(buffer)
    throw Object.assign(new Error(`the object ended after ${filled} of ${length} bytes`), { code: "ECONNRESET" })
  }
  return buffer
}

/**
 * Builds the store: loads the SDK, checks the options and that the bucket answers (HeadBucket),
 * and creates a client that the scope destroys.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<BlobStore.Service, StorageError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const checked = checkOptions(options)
    if (checked instanceof ConfigError) return yield* checked
    if (checked.bucket === undefined) return yield* invalid("s3.bucket", "is required")
    const sdk = yield* load
    const bucket = checked.bucket
    const prefix = checked.prefix ?? ""
    const partSize = checked.multipartThreshold ?? DEFAULT_THRESHOLD
    const concurrency = checked.concurrency ?? DEFAULT_CONCURRENCY
    const region = checked.region ?? (checked.endpoint !== undefined ? "us-east-1" : undefined)

    const client = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          new sdk.client.S3Client({
            ...(region === undefined ? {} : { region }),
            ...(checked.endpoint === undefined ? {} : { endpoint: checked.endpoint }),
            ...(checked.credentials === undefined ? {} : { credentials: checked.credentials }),
            forcePathStyle: checked.forcePathStyle ?? false,
            maxAttempts: 1,
            // The SDK's default request checksums (CRC32 of every PutObject and UploadPart) and
            // response validation cost a pass over the bytes each way; the cache stores an XXH64
            // of every blob's bytes and verifies it on each read, so only checksums an operation
            // requires are sent.
            requestChecksumCalculation: "WHEN_REQUIRED",
            responseChecksumValidation: "WHEN_REQUIRED"
          }),
        catch: (cause) => new ConfigError({ reason: "Invalid", field: "s3", description: Validate.show(cause), cause })
      }),
      (client) => Effect.sync(() => client.destroy())
    )

    // The server's `Date` of each answer, by its output object: `listAged` judges ages by the
    // clock that stamped `LastModified`, whatever this machine's clock says.
    const serverDates = new WeakMap<object, number>()
    client.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args)
        const headers = (result.response as { readonly headers?: Record<string, string | undefined> }).headers
        const date = headers?.date === undefined ? NaN : Date.parse(headers.date)
        if (typeof result.output === "object" && result.output !== null && !Number.isNaN(date)) {
          serverDates.set(result.output, date)
        }
        return result
      },
      { step: "initialize", name: "cachenessServerDate" }
    )

    /** One SDK call, interruptible, retried while transient, its failure a `StorageError`. */
    const call = <A>(
      method: string,
      reason: StorageReason,
      id: string | undefined,
      run: (signal: AbortSignal) => Promise<A>
    ) =>
      Effect.tryPromise({ try: run, catch: (cause) => cause }).pipe(
        Effect.retry({ schedule: RETRY, while: isTransient }),
        Effect.mapError(toStorageError(method, reason, id))
      )

    const send = <A>(command: { readonly input: unknown }, signal: AbortSignal): Promise<A> =>
      (client.send as (command: unknown, options: { abortSignal: AbortSignal }) => Promise<A>)(command, {
        abortSignal: signal
      })

    yield* call(
      "BlobStore.make",
      "ReadFailed",
      undefined,
      (signal) => send(new sdk.client.HeadBucketCommand({ Bucket: bucket }), signal)
    ).pipe(
      Effect.mapError((error) =>
        new StorageError({
          ...error,
          description: `bucket ${JSON.stringify(bucket)} did not answer: ${error.description}`
        })
      )
    )

    const upload = (key: string, bytes: Uint8Array, signal: AbortSignal): Promise<unknown> => {
      if (bytes.byteLength < partSize) {
        return send(
          new sdk.client.PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength }),
          signal
        )
      }
      // Parts no smaller than the threshold, and no more than S3's 10,000 of them.
      const size = Math.max(partSize, Math.ceil(bytes.byteLength / MAX_PARTS))
      const job = new sdk.storage.Upload({
        client,
        params: { Bucket: bucket, Key: key, Body: bytes },
        partSize: size,
        queueSize: concurrency,
        // A failed upload aborts itself: no parts left to pay for.
        leavePartsOnError: false
      })
      signal.addEventListener("abort", () => void job.abort().catch(() => undefined), { once: true })
      return job.done()
    }

    const put = Effect.fn("BlobStore.put")(function*(id: string, bytes: Uint8Array) {
      yield* BlobId.validateId(id, "BlobStore.put")
      yield* call("BlobStore.put", "WriteFailed", id, (signal) => upload(prefix + id, bytes, signal))
    })

    const get = Effect.fn("BlobStore.get")(function*(id: string) {
      yield* BlobId.validateId(id, "BlobStore.get")
      return yield* call("BlobStore.get", "ReadFailed", id, async (signal): Promise<Option.Option<Uint8Array>> => {
        let response: S3.GetObjectCommandOutput
        try {
          response = await send(new sdk.client.GetObjectCommand({ Bucket: bucket, Key: prefix + id }), signal)
        } catch (cause) {
          if (isNotFound(cause)) return Option.none()
          throw cause
        }
        if (response.Body === undefined) return Option.some(new Uint8Array(0))
        return Option.some(await readBody(response.Body, response.ContentLength))
      })
    })

    const head = (method: string, id: string) =>
      call(method, "ReadFailed", id, async (signal) => {
        try {
          await send(new sdk.client.HeadObjectCommand({ Bucket: bucket, Key: prefix + id }), signal)
          return true
        } catch (cause) {
          if (isNotFound(cause)) return false
          throw cause
        }
      })

    const has = Effect.fn("BlobStore.has")(function*(id: string) {
      yield* BlobId.validateId(id, "BlobStore.has")
      return yield* head("BlobStore.has", id)
    })

    // S3's DeleteObject answers the same whether or not the object existed; HeadObject first says
    // which (a concurrent delete between the two may make both callers see true).
    const remove = Effect.fn("BlobStore.delete")(function*(id: string) {
      yield* BlobId.validateId(id, "BlobStore.delete")
      if (!(yield* head("BlobStore.delete", id))) return false
      yield* call(
        "BlobStore.delete",
        "DeleteFailed",
        id,
        (signal) => send(new sdk.client.DeleteObjectCommand({ Bucket: bucket, Key: prefix + id }), signal)
      )
      return true
    })

    /**
     * Every blob id under the prefix with its age by the server's clock (the `Date` of the page
     * that listed it minus its `LastModified`), page by page; objects whose names are no blob id
     * are not blobs.
     */
    const listObjects = (method: string) =>
      Effect.gen(function*() {
        const objects: Array<{ readonly id: string; readonly age: number }> = []
        let token: string | undefined
        do {
          const { date, page } = yield* call(method, "ListFailed", undefined, async (signal) => {
            const command = new sdk.client.ListObjectsV2Command({
              Bucket: bucket,
              ...(prefix === "" ? {} : { Prefix: prefix }),
              ...(token === undefined ? {} : { ContinuationToken: token })
            })
            const page = await send<S3.ListObjectsV2CommandOutput>(command, signal)
            return { page, date: serverDates.get(page) }
          })
          // Without a Date header (never seen in practice) every object is as old as can be.
          const now = date ?? Infinity
          for (const object of page.Contents ?? []) {
            const name = object.Key?.slice(prefix.length)
            if (name !== undefined && object.Key!.startsWith(prefix) && BlobId.isValid(name)) {
              const modified = object.LastModified?.getTime()
              objects.push({ id: name, age: modified === undefined ? Infinity : now - modified })
            }
          }
          token = page.IsTruncated === true ? page.NextContinuationToken : undefined
        } while (token !== undefined)
        return objects
      })

    const listIds = (method: string) => Effect.map(listObjects(method), (objects) => objects.map((o) => o.id))

    const list = listIds("BlobStore.list").pipe(Effect.withSpan("BlobStore.list"))

    // Ages by the server's clock, not this machine's: many machines judge one bucket alike.
    const listAged = (olderThan: number) =>
      Effect.map(
        listObjects("BlobStore.listAged"),
        (objects) => objects.flatMap((o) => o.age > olderThan ? [o.id] : [])
      ).pipe(Effect.withSpan("BlobStore.listAged"))

    /** Deletes `ids` in batches of S3's limit; a key S3 reports it could not delete fails the call. */
    const deleteBatched = (method: string, ids: ReadonlyArray<string>) => {
      const batches: Array<ReadonlyArray<string>> = []
      for (let i = 0; i < ids.length; i += DELETE_BATCH) batches.push(ids.slice(i, i + DELETE_BATCH))
      return Effect.forEach(batches, (batch) =>
        call(method, "DeleteFailed", undefined, async (signal) => {
          const result = await send<S3.DeleteObjectsCommandOutput>(
            new sdk.client.DeleteObjectsCommand({
              Bucket: bucket,
              Delete: { Objects: batch.map((id) => ({ Key: prefix + id })), Quiet: true }
            }),
            signal
          )
          const first = result.Errors?.[0]
          if (first !== undefined) {
            // Shaped like an SDK failure, so the retry and the reason read it the same way.
            throw Object.assign(
              new Error(
                `${result.Errors!.length} of ${batch.length} objects not deleted, e.g. ${first.Key}: ${first.Message}`
              ),
              {
                name: first.Code ?? "DeleteFailed",
                $metadata: first.Code === "SlowDown" || first.Code === "InternalError" ? { httpStatusCode: 503 } : {}
              }
            )
          }
        }), { concurrency, discard: true })
    }

    const clear = Effect.gen(function*() {
      const ids = yield* listIds("BlobStore.clear")
      yield* deleteBatched("BlobStore.clear", ids)
      return ids.length
    }).pipe(Effect.withSpan("BlobStore.clear"))

    // `location` names a directory only; a bucket is none (make's default).
    const deleteMany = (ids: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        for (const id of ids) yield* BlobId.validateId(id, "BlobStore.deleteMany")
        yield* deleteBatched("BlobStore.deleteMany", ids)
      }).pipe(Effect.withSpan("BlobStore.deleteMany"))

    return makeBlobStore({ backend: "s3", put, get, delete: remove, has, list, listAged, clear, deleteMany })
  })

/**
 * The store; the client lives as long as the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<BlobStore, StorageError | ConfigError> =>
  Layer.scoped(BlobStore, make(options))

/**
 * The store with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<BlobStore, StorageError | ConfigError | ConfigErrorModule.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
