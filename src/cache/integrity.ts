/**
 * Integrity: what the checksum column holds, whether stored bytes can be trusted, and `verify`
 * (with repair) over every entry, orphan blob and abandoned temp file.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Places } from "../blob/service.js"
import * as Header from "../codec/header.js"
import type { EntryRecord, StoredValue } from "../metadata/service.js"
import type { IntegrityReport } from "../schema/CacheEntry.js"
import { NotSync } from "../shared/sync.js"
import * as Validate from "../shared/validate.js"
import { type Engine, notify, versionOf } from "./context.js"
import * as FastPath from "./fastPath.js"
import { type CacheError, ConfigError, type VerifyOptions } from "./service.js"
import * as Signing from "./signing.js"

/**
 * A blob temp file older than this was abandoned by a crash (no write takes an hour).
 *
 * @since 0.1.0
 * @category constants
 */
export const STALE_TEMP_AGE = 60 * 60 * 1000
/**
 * A blob no row references, younger than this, may be a put in flight: its row commits after the
 * blob is written, once the put has the metadata store's write lock (SQLite waits up to its busy
 * timeout, 10 s by default, behind any long write). Judged like temp files: no put takes an hour.
 */
const ORPHAN_GRACE = STALE_TEMP_AGE

/** The value of each hex digit's UTF-16 code (either case), -1 for every other code below 128. */
const HEX_VALUE = (() => {
  const table = new Int8Array(128).fill(-1)
  for (let i = 0; i < 16; i++) {
    table["0123456789abcdef".charCodeAt(i)] = i
    table["0123456789ABCDEF".charCodeAt(i)] = i
  }
  return table
})()
/** The code of each lower-case hex digit. */
const HEX_CODE = Array.from("0123456789abcdef", (digit) => digit.charCodeAt(0))
/** Scratch for `bindKey`'s 16 output codes (synchronous, so never shared by two calls). */
const bound: Array<number> = new Array(16).fill(0)

/** `bindKey` as first written (parse, XOR, format): what it answers when either side is not 16 hex digits. */
const bindKeyParsed = (checksum: string, key: string): string => {
  const hi = (Number.parseInt(checksum.slice(0, 8), 16) ^ Number.parseInt(key.slice(0, 8), 16)) >>> 0
  const lo = (Number.parseInt(checksum.slice(8, 16), 16) ^ Number.parseInt(key.slice(8, 16), 16)) >>> 0
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0")
}

/**
 * An XXH64 checksum bound to the entry's key (XOR of the two 64-bit values, as hex). A damaged
 * database can point a key at another entry's row — an index entry whose row id lost a bit — and
 * that row's bytes match their own checksum; bound to the key, they no longer match the key asked
 * for, so the read is a miss instead of another key's value. XORed digit by digit (the same
 * answer as parsing both halves, XORing and formatting them, which cost ~3 µs of every put and
 * every read: four `parseInt`, two `padStart`); anything but 16 hex digits takes that way.
 *
 * @since 0.1.0
 * @category checksums
 */
export const bindKey = (checksum: string, key: string): string => {
  for (let i = 0; i < 16; i++) {
    const a = HEX_VALUE[checksum.charCodeAt(i)]
    const b = HEX_VALUE[key.charCodeAt(i)]
    // Out of the table (a code ≥ 128, or NaN past the end of a short string) is undefined.
    if (!(a >= 0 && b >= 0)) return bindKeyParsed(checksum, key)
    bound[i] = HEX_CODE[a ^ b]
  }
  return String.fromCharCode.apply(null, bound)
}

/**
 * What a read needs to judge stored bytes: the signer, whether plain checksums are checked, and
 * the hash of bytes.
 *
 * @since 0.1.0
 * @category models
 */
export interface IntegritySettings {
  readonly signer: Signing.Signer | null
  readonly verifyIntegrity: boolean
  readonly hashBytes: (bytes: Uint8Array) => string
  /** `hashBytes` in pieces, when the hasher has it (`Hasher.Service.hashStream`). */
  readonly hashStream?:
    | (() => { readonly update: (piece: Uint8Array) => void; readonly digest: () => string })
    | undefined
  /**
   * The namespace rule (`shared/namespaceKey.ts`). Entries rekeyed by the namespace migration keep
   * bytes whose header names their old, default-namespace key: given a row's namespace, a header
   * key that derives to the row's key in it is the entry's own.
   */
  readonly namespaceKey?: ((namespace: string, key: string) => string) | undefined
}

/**
 * Why `checkBytes` rejects bytes whose header names another key; `read.ts` looks the whole row up
 * (with its namespace) before it believes it.
 *
 * @since 0.1.0
 * @category checks
 */
export const OTHER_KEY = "holds the value of another key (its header names a different key)"

/** Whether the header names the entry's key, or (rekeyed rows) its key before the namespace counted. */
const headerNamesKey = (settings: IntegritySettings, record: StoredValue, bytes: Uint8Array): boolean => {
  if (Header.keyMatches(bytes, record.key) !== false) return true
  const namespace = (record as { readonly namespace?: unknown }).namespace
  if (settings.namespaceKey === undefined || typeof namespace !== "string" || namespace === "") return false
  const stored = Header.storedKey(bytes)
  return stored !== undefined && settings.namespaceKey(namespace, stored) === record.key
}

/**
 * What the checksum column holds: XXH64 of the stored bytes bound to the entry's key, or the
 * HMAC of the row's trusted fields and the bytes when signing.
 *
 * @since 0.1.0
 * @category checksums
 */
export const checksumOf = (settings: IntegritySettings, row: Signing.SignedFields, bytes: Uint8Array): string =>
  settings.signer === null ? bindKey(settings.hashBytes(bytes), row.key) : settings.signer.sign(row, bytes)

/**
 * Blobs at least this large are hashed piece by piece as they are read (`BlobStore.get`'s
 * `onPiece`); smaller ones are read in one go and hashed after, which costs less than the extra
 * threadpool round trips.
 *
 * @since 0.1.0
 * @category checksums
 */
export const HASH_WHILE_READING = 8 << 20

/**
 * The plain checksum of a blob computed from the pieces its store hands over while it reads
 * (`BlobStore.get`'s `onPiece`). `digestOf(bytes)` is that hash only when the pieces were exactly
 * `bytes`, in order (the same memory, every byte once); otherwise `undefined`, and the read
 * hashes the whole as before. `digestOfViews(views)` is the same for a blob read into several
 * views (`BlobStore.getPlaced`): the pieces must tile them, in order. Nothing is trusted early: the
 * digest is compared with the row's checksum by `checkBytes`, before the value is decoded and
 * returned.
 *
 * @since 0.1.0
 * @category checksums
 */
export interface PieceHash {
  readonly onPiece: (piece: Uint8Array) => void
  readonly digestOf: (bytes: Uint8Array) => string | undefined
  readonly digestOfViews: (views: ReadonlyArray<Uint8Array>) => string | undefined
}

/** Whether `pieces` are `views`' memory, every byte once, in order. */
const tiles = (pieces: ReadonlyArray<Uint8Array>, views: ReadonlyArray<Uint8Array>): boolean => {
  let p = 0
  for (const view of views) {
    let covered = 0
    while (covered < view.byteLength) {
      const piece = pieces[p++]
      if (
        piece === undefined || piece.buffer !== view.buffer || piece.byteOffset !== view.byteOffset + covered ||
        covered + piece.byteLength > view.byteLength || piece.byteLength === 0
      ) return false
      covered += piece.byteLength
    }
  }
  return p === pieces.length
}

/**
 * A `PieceHash` for reading `record`'s blob, or `undefined` where the read needs none: a signed
 * cache (the signature covers the row too), `verifyIntegrity: false`, a hasher without
 * `hashStream`, or a blob under `HASH_WHILE_READING`.
 *
 * @since 0.1.0
 * @category checksums
 */
export const pieceHash = (settings: IntegritySettings, record: StoredValue): PieceHash | undefined => {
  const { hashStream } = settings
  if (
    settings.signer !== null || !settings.verifyIntegrity || hashStream === undefined ||
    record.storedBytes < HASH_WHILE_READING
  ) return undefined
  const stream = hashStream()
  // Tens of pieces for the largest blobs: each one's place is checked against the bytes returned.
  const pieces: Array<Uint8Array> = []
  const digestOfViews = (views: ReadonlyArray<Uint8Array>) =>
    tiles(pieces.filter((piece) => piece.byteLength > 0), views.filter((view) => view.byteLength > 0))
      ? stream.digest()
      : undefined
  return {
    onPiece: (piece) => {
      pieces.push(piece)
      stream.update(piece)
    },
    digestOf: (bytes) => digestOfViews([bytes]),
    digestOfViews
  }
}

/**
 * Why stored bytes cannot be trusted, or `null` when they check out. With a signing key the
 * signature is always checked (`verifyIntegrity: false` only skips plain checksums). `digest` is
 * `hashBytes(bytes)` when the caller already has it (`PieceHash`).
 *
 * @since 0.1.0
 * @category checks
 */
export const checkBytes = (
  settings: IntegritySettings,
  record: StoredValue,
  bytes: Uint8Array,
  digest?: string | undefined
): string | null =>
  !(bytes instanceof Uint8Array)
    ? "has a damaged row (its value is not bytes)"
    : bytes.length !== record.storedBytes
    ? `has ${bytes.length} stored bytes, expected ${record.storedBytes}`
    : !headerNamesKey(settings, record, bytes)
    ? OTHER_KEY
    : settings.signer !== null
    ? settings.signer.verify(record as EntryRecord, bytes, record.checksum)
      ? null
      : Signing.isLegacy(record.checksum)
      ? "is signed under the previous signing scheme, which does not cover its row"
      : Signing.isSigned(record.checksum)
      ? "failed its signature check (tampered with, or signed with another key)"
      : "is not signed"
    : settings.verifyIntegrity && bindKey(digest ?? settings.hashBytes(bytes), record.key) !== record.checksum
    ? "failed its checksum"
    : null

/**
 * `checkBytes` for a blob read into views (`BlobStore.getPlaced`), of which `header` is the first
 * and `length` the sum. Only for a cache without a signing key (a signature is checked over the
 * bytes in one piece), and only with the `digest` of the views when plain checksums are checked.
 *
 * @since 0.1.0
 * @category checks
 */
export const checkPlaced = (
  settings: IntegritySettings,
  record: StoredValue,
  header: Uint8Array,
  length: number,
  digest: string | undefined
): string | null =>
  length !== record.storedBytes
    ? `has ${length} stored bytes, expected ${record.storedBytes}`
    : !headerNamesKey(settings, record, header)
    ? OTHER_KEY
    : settings.signer !== null || (settings.verifyIntegrity && digest === undefined)
    ? "cannot be checked in pieces"
    : settings.verifyIntegrity && bindKey(digest!, record.key) !== record.checksum
    ? "failed its checksum"
    : null

/**
 * A signed entry seen by a cache without the key: it cannot be checked, so it is not served (nor
 * removed).
 *
 * @since 0.1.0
 * @category checks
 */
export const unverifiable = (settings: IntegritySettings, record: StoredValue): boolean =>
  settings.signer === null && Signing.isSigned(record.checksum)

/**
 * Blob read failures no retry cures (a directory in the blob's place, an invalid id in a row).
 *
 * @since 0.1.0
 * @category checks
 */
export const isPermanentReadError = (error: CacheError): boolean =>
  error._tag === "StorageError" && (error.reason === "Unreadable" || error.reason === "InvalidId")

/**
 * A blob's bytes; `None` when it is gone or can never be read (a permanent error is damage to
 * the entry, not to the store: the entry is broken). Transient errors (EIO, EMFILE) fail.
 * `onPiece` goes to the store (`BlobStore.get`).
 *
 * @since 0.1.0
 * @category reads
 */
export const readStoredBlob = (
  engine: Engine,
  id: string,
  onPiece?: ((piece: Uint8Array) => void) | undefined
): Effect.Effect<Option.Option<Uint8Array>, CacheError> =>
  Effect.catchIf(engine.blobs.get(id, onPiece), isPermanentReadError, () => Effect.succeed(Option.none<Uint8Array>()))

/**
 * `readStoredBlob` through `BlobStore.getPlaced` (which the caller checked is there): the views
 * the store filled, as `place` chose them (one view, the whole blob, when it declined).
 *
 * @since 0.1.0
 * @category reads
 */
export const readStoredPlaced = (
  engine: Engine,
  id: string,
  place: (head: Uint8Array, size: number) => Places | undefined,
  onPiece?: ((piece: Uint8Array) => void) | undefined
): Effect.Effect<Option.Option<ReadonlyArray<Uint8Array>>, CacheError> =>
  Effect.catchIf(
    engine.blobs.getPlaced!(id, place, onPiece),
    isPermanentReadError,
    () => Effect.succeed(Option.none<ReadonlyArray<Uint8Array>>())
  )

/** A problem `verify` found with one version of an entry. */
interface Finding {
  readonly kind: "dangling" | "size" | "checksum"
  readonly record: EntryRecord
  /** The blob's real size when its bytes match their checksum (the recorded size is what is wrong). */
  readonly actualBytes: number | null
}

const VERIFY_OPTIONS = {
  repair: Validate.optionalBoolean,
  onProgress: Validate.optionalFunction<NonNullable<VerifyOptions["onProgress"]>>
}

/** The same version of an entry: a put since changes the blob id, checksum or creation time. */
const sameVersion = (a: EntryRecord, b: EntryRecord) =>
  a.blobId === b.blobId && a.checksum === b.checksum && a.createdAt === b.createdAt && a.storedBytes === b.storedBytes

/**
 * `verify`: checks every entry against its stored bytes, finds orphan blobs and abandoned temp
 * files, and with `repair` removes (or fixes) what is broken.
 *
 * @since 0.1.0
 * @category integrity
 */
export const makeVerify = (engine: Engine, settings: IntegritySettings) => {
  const { blobs, metadata } = engine
  const { signer } = settings

  /**
   * What is wrong with one version of an entry, or `null`. A blob that can never be read counts
   * as missing (dangling). A size mismatch whose bytes match their checksum is fixable: the
   * recorded size is wrong, not the bytes (`actualBytes`).
   */
  const examine = (record: EntryRecord): Effect.Effect<Finding | null, CacheError> =>
    Effect.gen(function*() {
      let bytes: Option.Option<Uint8Array>
      if (record.blobId === null) {
        const row = yield* metadata.lookup(record.key)
        // Replaced or removed since the listing: not this version's problem.
        if (Option.isNone(row) || !sameVersion(row.value, record)) return null
        bytes = Option.fromNullable(row.value.inline)
      } else {
        bytes = yield* readStoredBlob(engine, record.blobId)
      }
      if (Option.isNone(bytes) || !(bytes.value instanceof Uint8Array)) {
        return { kind: "dangling", record, actualBytes: null }
      }
      const intact = unverifiable(settings, record)
        ? null
        : signer === null
        ? bindKey(settings.hashBytes(bytes.value), record.key) === record.checksum
        : signer.verify(record, bytes.value, record.checksum)
      if (bytes.value.length !== record.storedBytes) {
        return { kind: "size", record, actualBytes: intact === true ? bytes.value.length : null }
      }
      return intact === false ? { kind: "checksum", record, actualBytes: null } : null
    })

  return Effect.fn("Cache.verify")(function*(input?: VerifyOptions) {
    const options = Validate.fields("verify", input, VERIFY_OPTIONS)
    if (options instanceof ConfigError) return yield* options
    const records = yield* metadata.select({})
    let done = 0
    const firstLook: Array<Finding> = []
    for (const record of records) {
      const finding = yield* examine(record)
      if (finding !== null) firstLook.push(finding)
      done++
      if (options.onProgress !== undefined && (done % 256 === 0 || done === records.length)) {
        yield* notify(options.onProgress, { done, total: records.length })
      }
    }
    // A second look at each finding on the row as it is now: under write load the first look
    // sees versions that were replaced meanwhile (their blob deleted by the overwrite). Only what
    // is still wrong with the same version is reported or repaired.
    const findings: Array<Finding> = []
    for (const first of firstLook) {
      const current = yield* metadata.lookup(first.record.key)
      if (Option.isNone(current) || !sameVersion(current.value, first.record)) continue
      const again = yield* examine(current.value)
      if (again !== null) findings.push(again)
    }
    const dangling = findings.filter((f) => f.kind === "dangling").map((f) => f.record.key)
    const sizeMismatches = findings.filter((f) => f.kind === "size").map((f) => f.record.key)
    const checksumMismatches = findings.filter((f) => f.kind === "checksum").map((f) => f.record.key)
    const referenced = new Set(records.map((r) => r.blobId).filter((id) => id !== null))
    // Blob ids old enough to be judged: a young blob without a row may be a put in flight.
    let orphans = (yield* FastPath.listAged(blobs, ORPHAN_GRACE)).filter((id) => !referenced.has(id))
    if (orphans.length > 0) {
      // Re-read references: a put writes its blob before its row, which may have committed since.
      const live = new Set(
        (yield* metadata.select({ keys: orphans.map((id) => id.slice(0, 16)) })).map((r) => r.blobId)
      )
      orphans = orphans.filter((id) => !live.has(id))
    }
    let repaired = 0
    if (options?.repair === true) {
      for (const finding of findings) {
        const { record } = finding
        // Bytes intact under a wrong recorded size: the row is fixed, not removed.
        const fixed = finding.kind === "size" && finding.actualBytes !== null
          ? yield* FastPath.repairSize(metadata, record.key, record.blobId, record.checksum, finding.actualBytes)
          : NotSync
        if (fixed === NotSync) repaired += yield* engine.removeMatching(versionOf(record))
        else if (fixed) repaired++
      }
      for (const id of orphans) {
        const deleted = yield* Effect.catchAll(
          blobs.delete(id),
          (e) => Effect.as(Effect.logWarning(`cacheness: could not delete orphan blob ${id}: ${e.message}`), false)
        )
        if (deleted) repaired++
      }
      // The entry and byte counters are what size enforcement and stats trust: recomputed from
      // the rows, whatever drifted them.
      yield* FastPath.recount(metadata)
    }
    const temps = yield* FastPath.staleTemp(blobs, STALE_TEMP_AGE)
    if (options?.repair === true && temps.length > 0) repaired += yield* FastPath.removeStaleTemp(blobs, STALE_TEMP_AGE)
    if (options?.repair === true && repaired > 0) {
      yield* Effect.logDebug(`cacheness: verify repaired ${repaired} problems`)
    }
    const report: IntegrityReport = {
      checked: records.length,
      orphans,
      dangling,
      sizeMismatches,
      checksumMismatches,
      staleTempFiles: temps,
      repaired
    }
    return report
  })
}
