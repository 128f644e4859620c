/**
 * Content hashes of the files and directories given as key parameters (`Key.file`, `Key.dir`,
 * `file:` URLs). The policies, as data where they can be:
 *
 * - A file hashes to the XXH64 (seed 0) of its bytes, read in 1 MiB chunks into reused buffers:
 *   constant memory whatever the size, and equal to `hashBytes` of the whole content.
 * - A directory hashes to the XXH64 of its listing: every entry below it, sorted by relative path
 *   (`/`-separated, UTF-16 code unit order), each written as
 *   `kind:u8 + u32 length + UTF-8 relative path + u32 length + UTF-8 value` after a version byte,
 *   where kind 1 is a file (value: its content hash) and kind 2 a symlink that is not followed
 *   (value: the link text). The directory's own name is not part of it.
 * - Regular files count. Empty subdirectories do not (git's rule: adding one changes nothing).
 *   FIFOs, sockets and devices are skipped without being opened (reading a FIFO would block).
 * - A symlink to a regular file counts as that file's content under the link's name (like a copy).
 *   A symlink to a directory, a dangling symlink or a loop is never followed: it counts by its link
 *   text, so repointing it misses but nothing outside the tree is read — a link cannot silently
 *   pull a whole other tree (or itself) into the hash. The root itself may be a symlink: it is the
 *   path the caller named.
 * - A tree of `parallelFiles` files or `parallelBytes` bytes or more is read by a pool of worker
 *   threads (one per core, hashWorkers.ts) with `concurrency` files in flight; the digest is the
 *   same as reading one by one (entries are sorted after). Smaller work stays on this thread.
 * - Stat fingerprints (size, mtime, ctime, inode, device, all nanosecond/exact) let an unchanged
 *   file skip the read. A fingerprint is saved only for files last modified more than
 *   `RACY_WINDOW_MS` before the hash, so an edit landing in the same timestamp tick as the read
 *   cannot hide behind it ("racy git"). What it cannot see: an edit that keeps the size and leaves
 *   mtime and ctime as they were (the clock set back, writes through a mapping that never update
 *   mtime). Turn them off with `pathHashing: { fingerprints: false }`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as nodeFs from "node:fs"
import * as path from "node:path"
import type { PathFingerprint } from "../metadata/service.js"
import type { PathDigest, PathRequest } from "./encoding.js"
import { hashPool, type WorkerResult } from "./hashWorkers.js"
import type { PathFingerprints, PathHashProgress } from "./service.js"

/**
 * The subset of `node:fs` path hashing uses; tests inject failures through it.
 *
 * @since 0.1.0
 * @category models
 */
export interface PathFileSystem {
  readonly statSync: typeof nodeFs.statSync
  readonly readdirSync: typeof nodeFs.readdirSync
  readonly readlinkSync: typeof nodeFs.readlinkSync
  readonly openSync: typeof nodeFs.openSync
  readonly readSync: typeof nodeFs.readSync
  readonly closeSync: typeof nodeFs.closeSync
  readonly promises: { readonly open: typeof nodeFs.promises.open }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StreamingHash {
  update(input: Uint8Array): unknown
  digest(): bigint
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HashFunctions {
  readonly h64Raw: (bytes: Uint8Array, seed?: bigint) => bigint
  readonly create64: (seed?: bigint) => StreamingHash
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PathHashingOptions {
  readonly concurrency: number
  readonly parallelFiles: number
  readonly parallelBytes: number
  readonly onProgress: ((progress: PathHashProgress) => void) | undefined
  readonly fileSystem: PathFileSystem
  readonly fingerprints: PathFingerprints["Type"] | undefined
}

/**
 * Defaults of `pathHashing` in `CacheConfig`.
 *
 * @since 0.1.0
 * @category constants
 */
export const PATH_HASHING_DEFAULTS = {
  concurrency: 8,
  parallelFiles: 80,
  parallelBytes: 4 * 1024 ** 3
} as const

/** A file modified this recently gets no fingerprint: an edit in the same tick would look unchanged. */
export const RACY_WINDOW_MS = 2_000
/** Read size: the memory one file being read holds, whatever its size. */
const CHUNK = 1024 * 1024
const DIR_LISTING_VERSION = 1
const KIND_FILE = 1
const KIND_LINK = 2

const toHex = (digest: bigint): string => digest.toString(16).padStart(16, "0")

interface FileEntry {
  readonly rel: string
  readonly abs: string
  readonly size: number
  readonly mtimeMs: number
  readonly stat: string
}

interface LinkEntry {
  readonly rel: string
  readonly target: string
}

/** Why a path could not be hashed; becomes a `Failed` digest, then a `KeyError` at its location. */
class PathFailure {
  constructor(readonly description: string, readonly cause?: unknown) {}
}

const errorCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error ? String((error as { code: unknown }).code) : undefined

const errorMessage = (error: unknown): string => error instanceof Error ? error.message : String(error)

const fingerprintOf = (st: nodeFs.BigIntStats): string => `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}:${st.dev}`

const fileEntry = (rel: string, abs: string, st: nodeFs.BigIntStats): FileEntry => ({
  rel,
  abs,
  size: Number(st.size),
  mtimeMs: Number(st.mtimeNs / 1_000_000n),
  stat: fingerprintOf(st)
})

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

const pool: Array<Buffer> = []
const MAX_POOLED = 32
const takeBuffer = (): Buffer => pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK)
const giveBuffer = (buffer: Buffer): void => {
  if (pool.length < MAX_POOLED) pool.push(buffer)
}

/**
 * Reads and hashes a file on this thread, 16 MiB at a time between yields, so a huge file does not
 * hold up other fibers. Synchronous reads: a thread-pool round trip per chunk costs more than the
 * copy itself here (measured on this VM kind), and the pair is what a worker does too.
 */
const hashFileInThread = (
  fs: PathFileSystem,
  api: HashFunctions,
  abs: string,
  onBytes: (n: number) => void
): Effect.Effect<string, unknown> =>
  Effect.suspend(() => {
    let fd: number
    try {
      fd = fs.openSync(abs, "r")
    } catch (error) {
      return Effect.fail(error)
    }
    const buffer = takeBuffer()
    const hash = api.create64(0n)
    const step = (): Effect.Effect<string, unknown> => {
      try {
        for (let i = 0; i < 16; i++) {
          const n = fs.readSync(fd, buffer, 0, CHUNK, null)
          if (n === 0) return Effect.succeed(toHex(hash.digest()))
          hash.update(buffer.subarray(0, n))
          onBytes(n)
        }
      } catch (error) {
        return Effect.fail(error)
      }
      return Effect.flatMap(Effect.yieldNow(), step)
    }
    return Effect.ensuring(
      step(),
      Effect.sync(() => {
        giveBuffer(buffer)
        try {
          fs.closeSync(fd)
        } catch {
          // nothing to do: the descriptor is gone either way
        }
      })
    )
  })

const NO_WORKERS = Symbol("NO_WORKERS")

/** A whole file read and hashed by a worker thread; `NO_WORKERS` when the pool cannot help. */
const hashFileInWorker = (abs: string): Effect.Effect<{ hash: string; bytes: number }, unknown> =>
  Effect.flatMap(
    Effect.async<WorkerResult, typeof NO_WORKERS>((resume) => {
      const running = hashPool().hash(abs)
      if (running === undefined) return resume(Effect.fail(NO_WORKERS))
      running.then((result) => resume(Effect.succeed(result)), () => resume(Effect.fail(NO_WORKERS)))
    }),
    (result) =>
      "error" in result
        ? Effect.fail(Object.assign(new Error(result.error.message), { code: result.error.code }))
        : Effect.succeed(result)
  )

// ---------------------------------------------------------------------------------------------
// Walking
// ---------------------------------------------------------------------------------------------

const walk = (fs: PathFileSystem, root: string): { files: Array<FileEntry>; links: Array<LinkEntry> } => {
  const files: Array<FileEntry> = []
  const links: Array<LinkEntry> = []
  const pending = [""]
  while (pending.length > 0) {
    const rel = pending.pop()!
    const dir = rel === "" ? root : path.join(root, rel)
    let dirents: Array<nodeFs.Dirent>
    try {
      dirents = fs.readdirSync(dir, { withFileTypes: true })
    } catch (error) {
      // A subdirectory removed while walking is simply no longer part of the tree.
      if (rel !== "" && errorCode(error) === "ENOENT") continue
      throw new PathFailure(`cannot list directory ${dir}: ${errorMessage(error)}`, error)
    }
    for (const d of dirents) {
      const childRel = rel === "" ? d.name : `${rel}/${d.name}`
      const abs = path.join(dir, d.name)
      if (d.isDirectory()) {
        pending.push(childRel)
      } else if (d.isFile()) {
        const st = statOrFail(fs, abs)
        if (st !== undefined) files.push(fileEntry(childRel, abs, st))
      } else if (d.isSymbolicLink()) {
        let target: nodeFs.BigIntStats | undefined
        try {
          target = fs.statSync(abs, { bigint: true, throwIfNoEntry: false })
        } catch {
          target = undefined // a loop (ELOOP) or an unreachable target: counted by its link text
        }
        if (target?.isFile() === true) files.push(fileEntry(childRel, abs, target))
        else links.push({ rel: childRel, target: readLink(fs, abs) })
      }
      // FIFOs, sockets, devices: skipped, never opened.
    }
  }
  return { files, links }
}

const statOrFail = (fs: PathFileSystem, abs: string): nodeFs.BigIntStats | undefined => {
  try {
    return fs.statSync(abs, { bigint: true, throwIfNoEntry: false })
  } catch (error) {
    throw new PathFailure(`cannot stat ${abs}: ${errorMessage(error)}`, error)
  }
}

const readLink = (fs: PathFileSystem, abs: string): string => {
  try {
    return fs.readlinkSync(abs, "utf8")
  } catch (error) {
    throw new PathFailure(`cannot read symlink ${abs}: ${errorMessage(error)}`, error)
  }
}

const textEncoder = new TextEncoder()

/** The listing bytes a directory digest hashes (layout in the module comment). */
const listingBytes = (entries: ReadonlyArray<readonly [kind: number, rel: string, value: string]>): Uint8Array => {
  const parts: Array<Uint8Array> = [Uint8Array.of(DIR_LISTING_VERSION)]
  let total = 1
  for (const [kind, rel, value] of entries) {
    const name = textEncoder.encode(rel)
    const text = textEncoder.encode(value)
    const head = new Uint8Array(5)
    head[0] = kind
    new DataView(head.buffer).setUint32(1, name.length, true)
    const mid = new Uint8Array(4)
    new DataView(mid.buffer).setUint32(0, text.length, true)
    parts.push(head, name, mid, text)
    total += 9 + name.length + text.length
  }
  const out = new Uint8Array(total)
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

const byRel = (a: { readonly rel: string }, b: { readonly rel: string }): number =>
  a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0

// ---------------------------------------------------------------------------------------------
// Hashing with fingerprints, progress and bounded concurrency
// ---------------------------------------------------------------------------------------------

const MiB = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

/**
 * Hashes every file of a listing; returns content hash by absolute path. Files that vanished
 * between the walk and the read are left out.
 */
const hashFiles = (
  api: HashFunctions,
  options: PathHashingOptions,
  root: string,
  files: ReadonlyArray<FileEntry>
): Effect.Effect<Map<string, string>, PathFailure> =>
  Effect.gen(function*() {
    const fs = options.fileSystem
    const hashes = new Map<string, string>()
    const bytesTotal = files.reduce((n, f) => n + f.size, 0)
    let filesDone = 0
    let bytesDone = 0
    let filesFromFingerprints = 0
    const report = () =>
      options.onProgress?.({
        path: root,
        filesDone,
        filesTotal: files.length,
        bytesDone,
        bytesTotal,
        filesFromFingerprints
      })

    let toRead: ReadonlyArray<FileEntry> = files
    const store = options.fingerprints
    if (store !== undefined) {
      const known = yield* store.lookup(files.map((f) => f.abs)).pipe(
        Effect.catchAll((error) =>
          Effect.as(
            Effect.logWarning(`cacheness: path fingerprints unavailable, reading every file: ${error.message}`),
            []
          )
        )
      )
      if (known.length > 0) {
        const byPath = new Map<string, PathFingerprint>()
        for (const fp of known) byPath.set(fp.path, fp)
        const unknown: Array<FileEntry> = []
        for (const f of files) {
          const fp = byPath.get(f.abs)
          if (fp !== undefined && fp.stat === f.stat) {
            hashes.set(f.abs, fp.hash)
            filesDone++
            filesFromFingerprints++
            bytesDone += f.size
          } else {
            unknown.push(f)
          }
        }
        toRead = unknown
      }
    }

    const readBytes = toRead.reduce((n, f) => n + f.size, 0)
    const large = toRead.length >= options.parallelFiles || readBytes >= options.parallelBytes
    const concurrency = large ? Math.max(1, options.concurrency) : 1
    if (large) {
      yield* Effect.logDebug(
        `cacheness: hashing ${toRead.length} files (${MiB(readBytes)}) under ${root}, ${concurrency} at a time` +
          (filesFromFingerprints > 0 ? `; ${filesFromFingerprints} unchanged files answered by fingerprints` : "")
      )
    }
    report()

    let nextLogAt = 0.25
    const afterFile = (f: FileEntry, hash: string | undefined) =>
      Effect.suspend(() => {
        if (hash !== undefined) hashes.set(f.abs, hash)
        filesDone++
        report()
        if (
          !large || bytesTotal === 0 || bytesDone / bytesTotal < nextLogAt || filesDone === files.length
        ) return Effect.void
        const share = Math.floor((bytesDone / bytesTotal) * 4) / 4
        nextLogAt = share + 0.25
        return Effect.logDebug(
          `cacheness: hashing ${root}: ${Math.round(share * 100)}% (${filesDone}/${files.length} files, ${
            MiB(bytesDone)
          })`
        )
      })

    // Large trees go to the worker pool (one per core) unless a test injected a file system.
    const useWorkers = large && fs === nodeFileSystem
    const inThread = (f: FileEntry) =>
      hashFileInThread(fs, api, f.abs, (n) => {
        bytesDone += n
        if (f.size >= 64 * CHUNK) report()
      })
    const readOne = (f: FileEntry): Effect.Effect<void, PathFailure> => {
      const read: Effect.Effect<string, unknown> = useWorkers
        ? hashFileInWorker(f.abs).pipe(
          Effect.map((done) => {
            bytesDone += done.bytes
            return done.hash
          }),
          Effect.catchIf((error) => error === NO_WORKERS, () => inThread(f))
        )
        : inThread(f)
      return read.pipe(
        Effect.catchAll((error) => vanishedOrFail(f, error)),
        Effect.flatMap((hash) => afterFile(f, hash))
      )
    }

    yield* Effect.forEach(toRead, readOne, { concurrency, discard: true })

    if (store !== undefined && toRead.length > 0) {
      // Wall-clock time: mtimes are file-system time, not cache time (a TestClock must not matter).
      const now = Clock.make().unsafeCurrentTimeMillis()
      const fresh: Array<PathFingerprint> = []
      for (const f of toRead) {
        const hash = hashes.get(f.abs)
        if (hash !== undefined && f.mtimeMs < now - RACY_WINDOW_MS) fresh.push({ path: f.abs, stat: f.stat, hash })
      }
      yield* store.save(fresh).pipe(
        Effect.catchAll((error) => Effect.logWarning(`cacheness: could not save path fingerprints: ${error.message}`))
      )
    }
    if (large) {
      yield* Effect.logDebug(`cacheness: hashed ${files.length} files (${MiB(bytesTotal)}) under ${root}`)
    }
    return hashes
  })

const vanishedOrFail = (f: FileEntry, error: unknown): Effect.Effect<undefined, PathFailure> =>
  f.rel !== "" && errorCode(error) === "ENOENT"
    ? Effect.succeed(undefined)
    : Effect.fail(new PathFailure(`cannot read ${f.abs}: ${errorMessage(error)}`, error))

/**
 * The digest of one requested path: its content hash, `Missing` (keyed by path, with a warning)
 * or `Failed` (not a file where a file was asked for, unreadable ...).
 *
 * @since 0.1.0
 * @category hashing
 */
export const resolvePath = (
  api: HashFunctions,
  options: PathHashingOptions,
  request: Pick<PathRequest, "kind" | "path">
): Effect.Effect<PathDigest> => {
  const fs = options.fileSystem
  const root = request.path
  return Effect.gen(function*() {
    let st: nodeFs.BigIntStats | undefined
    try {
      st = fs.statSync(root, { bigint: true, throwIfNoEntry: false })
    } catch (error) {
      if (errorCode(error) !== "ENOTDIR") {
        return yield* Effect.fail(new PathFailure(`cannot stat ${root}: ${errorMessage(error)}`, error))
      }
    }
    if (st === undefined) return { _tag: "Missing" } as const
    const kind = request.kind === "auto" ? (st.isDirectory() ? "dir" : "file") : request.kind
    if (kind === "file") {
      if (st.isDirectory()) {
        return yield* Effect.fail(new PathFailure(`${root} is a directory; use Key.dir for a directory`))
      }
      if (!st.isFile()) {
        return yield* Effect.fail(
          new PathFailure(`${root} is not a regular file (a FIFO, socket or device); it is not read`)
        )
      }
      const hashes = yield* hashFiles(api, options, root, [fileEntry("", root, st)])
      const hash = hashes.get(root)
      return hash === undefined
        ? yield* Effect.fail(new PathFailure(`${root} disappeared while it was read`))
        : { _tag: "File", hash } as const
    }
    if (!st.isDirectory()) {
      return yield* Effect.fail(new PathFailure(`${root} is not a directory; use Key.file for a file`))
    }
    const listing = yield* Effect.try({
      try: () => walk(fs, root),
      catch: (error) => error instanceof PathFailure ? error : new PathFailure(errorMessage(error), error)
    })
    const hashes = yield* hashFiles(api, options, root, listing.files)
    const entries: Array<readonly [number, string, string]> = []
    for (const f of listing.files.sort(byRel)) {
      const hash = hashes.get(f.abs)
      if (hash !== undefined) entries.push([KIND_FILE, f.rel, hash])
    }
    for (const l of listing.links) entries.push([KIND_LINK, l.rel, l.target])
    entries.sort((a, b) => a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)
    return { _tag: "Dir", hash: toHex(api.h64Raw(listingBytes(entries), 0n)) } as const
  }).pipe(
    Effect.catchAll((failure) =>
      Effect.succeed<PathDigest>({ _tag: "Failed", description: failure.description, cause: failure.cause })
    )
  )
}

/**
 * Digests of every distinct requested path, by request id. Roots are hashed one after another;
 * the files of a large root in parallel.
 *
 * @since 0.1.0
 * @category hashing
 */
export const resolvePaths = (
  api: HashFunctions,
  options: PathHashingOptions,
  requests: ReadonlyArray<PathRequest>
): Effect.Effect<Map<string, PathDigest>> =>
  Effect.gen(function*() {
    const digests = new Map<string, PathDigest>()
    for (const request of requests) {
      if (digests.has(request.id)) continue
      const digest = yield* resolvePath(api, options, request)
      if (digest._tag === "Missing") {
        yield* Effect.logWarning(
          `cacheness: key path ${request.path} does not exist; keyed by its path instead of its content`
        )
      }
      digests.set(request.id, digest)
    }
    return digests
  })

/**
 * The real file system.
 *
 * @since 0.1.0
 * @category constants
 */
export const nodeFileSystem: PathFileSystem = nodeFs
