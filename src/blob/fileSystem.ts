/**
 * `BlobStore` as files in a directory, sharded by the first four hex digits of the id:
 * `<directory>/ab/cd/abcd…-<version>`, so no directory grows past a few hundred entries.
 *
 * Writes are atomic: bytes go to a temp file in the same shard directory (`.<id>.<random>.tmp`,
 * which `list` never reports), which is then renamed over the final name; a failed write removes
 * its temp file. A crash between the two leaves only a temp file — invisible to readers, removed by
 * `clear` and by `cleanupTemp`. Durability against power loss is not promised (no fsync): the cache
 * checks checksums on read and treats a damaged blob as a miss.
 *
 * Each version of a value is a distinct id chosen by the caller (`<key>-<version token>`), so an
 * overwrite never replaces a file a concurrent reader is reading: readers of the old version keep
 * it until the cache deletes it, readers of the new version see the whole file or none.
 *
 * Built on `@effect/platform`'s `FileSystem`; `make` asks only for that service (tests supply a
 * failing one), `layer` provides Node's.
 *
 * @since 0.1.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { SystemError } from "@effect/platform/Error"
import type { PlatformError, SystemErrorReason } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Arr from "effect/Array"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Crypto from "node:crypto"
import * as NodeFs from "node:fs"
import * as Path from "node:path"
import * as BufferPool from "../shared/bufferPool.js"
import * as BlobId from "./blobId.js"
import { BlobStore, HEAD_BYTES, make as makeBlobStore, type Places, StorageError } from "./service.js"

/** The operating system's clock, which stamps file times. */
const systemClock = Clock.make()

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Where the shards live; resolved against the working directory when the layer is built. */
  readonly directory: string
  /** Directories 0700 and files 0600 (other users can neither read nor plant blobs). Default false. */
  readonly private?: boolean | undefined
  /** Open for looking only: the directory is not created (a missing one holds no blobs). */
  readonly readOnly?: boolean | undefined
}

const shardName = /^[0-9a-f]{2}$/
const tempName = /^\.([0-9a-f]{16}-[0-9a-z]{1,64})\.[0-9a-f]+\.tmp$/

const shardOf = (directory: string, id: string) => Path.join(directory, id.slice(0, 2), id.slice(2, 4))

type StorageReason = StorageError["reason"]

/**
 * Bytes per read when the caller takes the blob in pieces (`get`'s `onPiece`): each piece is
 * handed over while the next is read on the threadpool, so a 45 MiB blob's checksum (~8 ms on
 * the main thread) runs beside its read (~9 ms on the threadpool) instead of after it. Small
 * enough that the last piece, hashed alone, costs little; large enough that the threadpool round
 * trips (tens of µs each) do not add up.
 */
const PIECE = 4 << 20

/**
 * Bytes per write of a blob written while it is filled (`putFilling`): each range goes to the
 * threadpool once filled, so a thread writes it while this one fills (copies and hashes) the next.
 */
const WRITE_PIECE = 4 << 20

/** `fs.write` as a promise: how many bytes of `bytes[at, at + length)` went to `position`. */
const writeAt = (fd: number, bytes: Uint8Array, at: number, length: number, position: number) =>
  new Promise<number>((resolve, reject) =>
    NodeFs.write(fd, bytes, at, length, position, (error, written) => (error ? reject(error) : resolve(written)))
  )

/** All of `bytes[start, end)` at the same offset of the file, however many writes it takes. */
const writeRange = async (fd: number, bytes: Uint8Array, start: number, end: number) => {
  let at = start
  while (at < end) {
    const written = await writeAt(fd, bytes, at, end - at, at)
    if (written === 0) throw new Error(`wrote nothing at ${at} of ${end}`)
    at += written
  }
}

const closeFd = (fd: number) =>
  new Promise<void>((resolve, reject) => NodeFs.close(fd, (e) => (e ? reject(e) : resolve())))

/** Read-only and non-blocking (Windows has no `O_NONBLOCK`, nor FIFOs that can sit in a directory). */
const OPEN_BLOB = NodeFs.constants.O_RDONLY | (NodeFs.constants.O_NONBLOCK ?? 0)

/** Node's errno error as the `SystemError` `FileSystem` would have failed with. */
const systemError = (method: string, file: string, cause: unknown): SystemError => {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  const reason: SystemErrorReason = code === "ENOENT"
    ? "NotFound"
    : code === "EACCES"
    ? "PermissionDenied"
    : code === "EISDIR" || code === "ENOTDIR" || code === "ELOOP"
    ? "BadResource"
    : code === "EBUSY"
    ? "Busy"
    : "Unknown"
  return new SystemError({
    reason,
    module: "FileSystem",
    method,
    pathOrDescriptor: file,
    description: cause instanceof Error ? cause.message : String(cause),
    cause
  })
}

const isNotFound = (error: PlatformError) => error._tag === "SystemError" && error.reason === "NotFound"

/** Read errors no retry can cure: something other than a blob file sits in its path. */
const PERMANENT_READ_ERRORS = new Set<string | undefined>(["EISDIR", "ENOTDIR", "ELOOP"])

/** Maps a platform error to a `StorageError`, keeping the errno distinctions callers act on. */
const toStorageError = (method: string, fallback: StorageReason, id?: string) => (error: PlatformError) => {
  const code = (error.cause as NodeJS.ErrnoException | undefined)?.code
  const reason: StorageReason = code === "ENOSPC" || code === "EDQUOT"
    ? "NoSpace"
    : code === "EACCES" || code === "EPERM" || (error._tag === "SystemError" && error.reason === "PermissionDenied")
    ? "PermissionDenied"
    : fallback === "ReadFailed" && PERMANENT_READ_ERRORS.has(code)
    ? "Unreadable"
    : fallback
  return new StorageError({ reason, method, id, description: error.message, cause: error })
}

/** The views' bytes `[from, to)` counted across them in order, as `onPiece` pieces. */
const piecesOf = (
  views: ReadonlyArray<Uint8Array>,
  from: number,
  to: number,
  onPiece: (piece: Uint8Array) => void
) => {
  let base = 0
  for (const view of views) {
    const start = Math.max(from, base)
    const end = Math.min(to, base + view.byteLength)
    if (start < end) onPiece(view.subarray(start - base, end - base))
    base += view.byteLength
    if (base >= to) break
  }
}

/** `head` into the first views, in order. */
const copyHead = (head: Uint8Array, views: ReadonlyArray<Uint8Array>) => {
  let at = 0
  for (const view of views) {
    if (at >= head.byteLength) break
    const length = Math.min(view.byteLength, head.byteLength - at)
    view.set(head.subarray(at, at + length))
    at += length
  }
}

/**
 * The views holding the first `length` bytes: the last one cut short, later ones left out (the
 * first is kept, empty, when there are none).
 */
const cut = (views: ReadonlyArray<Uint8Array>, length: number): ReadonlyArray<Uint8Array> => {
  const first = views[0] ?? new Uint8Array(0)
  const out: Array<Uint8Array> = [first.subarray(0, Math.min(length, first.byteLength))]
  let left = length - out[0]!.byteLength
  for (let k = 1; k < views.length && left > 0; k++) {
    const view = views[k]!
    out.push(left >= view.byteLength ? view : view.subarray(0, left))
    left -= view.byteLength
  }
  return out
}

/**
 * Reads in flight at once while a blob is read in pieces into memory not yet faulted in. Three 4 MiB
 * reads side by side read a 64 MiB blob into fresh memory in 25 ms where one at a time took 34
 * (`fs.readFileSync`, one read: 31), and with its hash beside them in 34 ms where one at a time
 * took 40: the kernel faults the pages of each in on its own thread. Into memory already touched
 * (a pooled buffer, a ready spare) one read at a time is as fast, and leaves the cores to the
 * hash and the decode: with three, the lz4 Float64Array get of `bench formats` fell from
 * 1,805–1,880 MB/s to 1,635–1,736 in eight alternated runs.
 */
const FRESH_READS_IN_FLIGHT = 3

/**
 * Reads the file from offset `from` into the views (the file's bytes in their order, from the
 * views' byte `from` on), `piece` bytes per read at most, `inFlight` reads at once: while the
 * threadpool fills the next pieces, this thread hands the first to `onPiece`, in order.
 * Returns the bytes the views hold, `from` included: fewer than theirs when the file ends first.
 * Every read has ended when it returns or fails (none writes into the views after).
 */
const readViews = async (
  handle: NodeFs.promises.FileHandle,
  views: ReadonlyArray<Uint8Array>,
  from: number,
  onPiece: ((piece: Uint8Array) => void) | undefined,
  piece: number,
  inFlight = 1
): Promise<number> => {
  let index = 0
  let at = from
  while (index < views.length && at >= views[index]!.byteLength) at -= views[index++]!.byteLength
  let position = from
  interface Read {
    readonly chunk: Uint8Array
    readonly position: number
    readonly done: Promise<number>
  }
  const issue = (): Read | undefined => {
    while (index < views.length && at >= views[index]!.byteLength) {
      index++
      at = 0
    }
    if (index >= views.length) return undefined
    const view = views[index]!
    const length = Math.min(piece, view.byteLength - at)
    const chunk = view.subarray(at, at + length)
    const read = { chunk, position, done: handle.read(chunk, 0, length, position).then((result) => result.bytesRead) }
    at += length
    position += length
    return read
  }
  const queue: Array<Read> = []
  const fillQueue = () => {
    while (queue.length < inFlight) {
      const read = issue()
      if (read === undefined) return
      queue.push(read)
    }
  }
  let filled = from
  try {
    fillQueue()
    while (queue.length > 0) {
      const current = queue.shift()!
      let got = await current.done
      const length = current.chunk.byteLength
      // A short read is the file ending (regular files read short only there): what is left of
      // the piece is asked for once more before the read stops.
      while (got < length) {
        const more = (await handle.read(current.chunk, got, length - got, current.position + got)).bytesRead
        if (more === 0) break
        got += more
      }
      if (got < length) {
        filled += got
        if (got > 0) onPiece?.(current.chunk.subarray(0, got))
        break
      }
      fillQueue()
      filled += got
      onPiece?.(current.chunk)
    }
  } finally {
    // Reads still in flight (past a short read, or beside a failure) end before the caller's next step.
    await Promise.allSettled(queue.map((read) => read.done))
  }
  return filled
}

/** One file found under the directory: a blob or the temp file of a write. */
interface Found {
  readonly path: string
  readonly id: string
}

/**
 * Every blob and temp file under `directory`. A directory that vanished mid-walk (a concurrent
 * `clear`, an operator's `rm`), or a file in a directory's place, counts as empty, not as an error.
 */
const walk = (
  fs: FileSystem.FileSystem,
  directory: string,
  method: string
): Effect.Effect<{ readonly blobs: ReadonlyArray<Found>; readonly temps: ReadonlyArray<Found> }, StorageError> => {
  const names = (dir: string) =>
    fs.readDirectory(dir).pipe(
      // A file where a shard directory belongs holds no blobs (reads under it are broken entries).
      Effect.catchIf(
        (error) => isNotFound(error) || (error.cause as NodeJS.ErrnoException | undefined)?.code === "ENOTDIR",
        () => Effect.succeed<Array<string>>([])
      ),
      Effect.mapError(toStorageError(method, "ListFailed"))
    )
  return Effect.gen(function*() {
    const blobs: Array<Found> = []
    const temps: Array<Found> = []
    const outer = (yield* names(directory)).filter((name) => shardName.test(name))
    yield* Effect.forEach(
      outer,
      (first) =>
        Effect.flatMap(names(Path.join(directory, first)), (inner) =>
          Effect.forEach(
            inner.filter((name) => shardName.test(name)),
            (second) => {
              const shard = Path.join(directory, first, second)
              const prefix = first + second
              return Effect.map(names(shard), (files) => {
                for (const file of files) {
                  if (BlobId.isValid(file) && file.startsWith(prefix)) {
                    blobs.push({ path: Path.join(shard, file), id: file })
                  } else {
                    const temp = tempName.exec(file)
                    if (temp !== null) temps.push({ path: Path.join(shard, file), id: temp[1]! })
                  }
                }
              })
            },
            { discard: true }
          )),
      { concurrency: 8, discard: true }
    )
    return { blobs, temps }
  })
}

/**
 * Builds the store, creating `directory` if needed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<BlobStore.Service, StorageError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const directory = Path.resolve(options.directory)
    const dirMode = options.private === true ? { mode: 0o700 } : {}
    const fileMode = options.private === true ? { mode: 0o600 } : undefined
    if (options.readOnly !== true) {
      // Uninterruptible: when a sibling layer fails the open (a foreign database, say), the
      // interruption waits for the mkdir instead of leaving it to land after the open returned.
      yield* fs.makeDirectory(directory, { recursive: true, ...dirMode }).pipe(
        Effect.zipRight(options.private === true ? fs.chmod(directory, 0o700) : Effect.void),
        Effect.mapError(toStorageError("BlobStore.make", "WriteFailed")),
        Effect.uninterruptible
      )
    }

    // Shard directories known to exist, so the common put costs no mkdir. Forgotten when a write
    // finds its shard gone (removed behind our back), which then recreates it once.
    const knownShards = new Set<string>()
    const ensureShard = (shard: string) =>
      knownShards.has(shard)
        ? Effect.void
        : Effect.tap(fs.makeDirectory(shard, { recursive: true, ...dirMode }), () =>
          Effect.sync(() => knownShards.add(shard)))

    const writeOnce = (id: string, bytes: Uint8Array) => {
      const shard = shardOf(directory, id)
      const temp = Path.join(shard, `.${id}.${Crypto.randomBytes(8).toString("hex")}.tmp`)
      return ensureShard(shard).pipe(
        Effect.zipRight(
          fs.writeFile(temp, bytes, fileMode).pipe(
            Effect.zipRight(fs.rename(temp, Path.join(shard, id))),
            Effect.onError(() => Effect.ignore(fs.remove(temp, { force: true })))
          )
        ),
        Effect.tapError((error) => isNotFound(error) ? Effect.sync(() => knownShards.delete(shard)) : Effect.void)
      )
    }

    /**
     * `writeOnce` of bytes filled as they are written. The temp file is opened and `fill` run in
     * the caller's turn of the event loop (the bytes are then the value as it was when the put was
     * called, as a copy before any wait would make them); each `WRITE_PIECE` it reports final is
     * written at once, positioned, on the threadpool while the next is filled. Then close and
     * rename; on any failure the temp file goes.
     */
    const writeFilling = (
      id: string,
      bytes: Uint8Array,
      fill: (onFilled: (start: number, end: number) => void) => void
    ): Promise<void> => {
      const shard = shardOf(directory, id)
      const temp = Path.join(shard, `.${id}.${Crypto.randomBytes(8).toString("hex")}.tmp`)
      const open = () => {
        if (!knownShards.has(shard)) {
          NodeFs.mkdirSync(shard, { recursive: true, ...dirMode })
          knownShards.add(shard)
        }
        return NodeFs.openSync(temp, "w", fileMode?.mode)
      }
      let fd: number
      try {
        fd = open()
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException)?.code !== "ENOENT") return Promise.reject(cause)
        // The shard was removed behind our back: made again, once.
        knownShards.delete(shard)
        try {
          fd = open()
        } catch (again) {
          return Promise.reject(again)
        }
      }
      const writes: Array<Promise<void>> = []
      let submitted = 0
      let failure: { readonly cause: unknown } | undefined
      try {
        fill((_, end) => {
          if (end - submitted >= WRITE_PIECE) {
            writes.push(writeRange(fd, bytes, submitted, end))
            submitted = end
          }
        })
        if (submitted < bytes.byteLength) writes.push(writeRange(fd, bytes, submitted, bytes.byteLength))
      } catch (cause) {
        failure = { cause }
      }
      const removeTemp = (cause: unknown) =>
        NodeFs.promises.rm(temp, { force: true }).catch(() => {}).then(() => Promise.reject(cause))
      // Every write settled before the file is closed, whatever failed.
      return Promise.allSettled(writes).then(async (settled) => {
        const rejected = settled.find((result) => result.status === "rejected") as PromiseRejectedResult | undefined
        if (failure === undefined && rejected !== undefined) failure = { cause: rejected.reason }
        if (failure !== undefined) {
          await closeFd(fd).catch(() => {})
          return removeTemp(failure.cause)
        }
        try {
          // On this thread: microseconds, where the threadpool may be busy for tens of ms (a get's
          // spare faulting in), and these two would wait their turn behind it.
          NodeFs.closeSync(fd)
          NodeFs.renameSync(temp, Path.join(shard, id))
        } catch (cause) {
          return removeTemp(cause)
        }
      })
    }

    const putFilling = Effect.fn("BlobStore.put")(function*(
      id: string,
      bytes: Uint8Array,
      fill: (onFilled: (start: number, end: number) => void) => void
    ) {
      yield* BlobId.validateId(id, "BlobStore.put")
      yield* Effect.tryPromise({
        try: () => writeFilling(id, bytes, fill),
        catch: (cause) => systemError("write", Path.join(shardOf(directory, id), id), cause)
      }).pipe(Effect.mapError(toStorageError("BlobStore.put", "WriteFailed", id)))
    })

    const put = Effect.fn("BlobStore.put")(function*(id: string, bytes: Uint8Array) {
      yield* BlobId.validateId(id, "BlobStore.put")
      yield* writeOnce(id, bytes).pipe(
        Effect.catchIf(isNotFound, () => writeOnce(id, bytes)),
        Effect.mapError(toStorageError("BlobStore.put", "WriteFailed", id))
      )
    })

    /**
     * The whole file, in a buffer from `BufferPool`: a large one is then memory already touched,
     * and the cache gives it back once the value decoded from it no longer needs it (a 64 MiB
     * array's blob read into fresh memory costs a page fault per 4 KiB). Blobs are written once,
     * so the size read first is the size to read; a shorter file fails its checksum upstream.
     *
     * Opened with Node's `fs` rather than `FileSystem`, which cannot ask for `O_NONBLOCK`: a FIFO
     * planted under a blob's name would otherwise block `open` forever on a libuv thread (four of
     * them stall every file operation of the process). Non-blocking, `open` returns at once, and
     * `fstat` on the descriptor — not on the path, which may change meanwhile — tells a regular
     * file from anything else. Anything else is not a blob: `None`, as for a missing file.
     *
     * With `place` (`getPlaced`), the first `HEAD_BYTES` are read into a small buffer and `place`
     * says where the rest goes; when it declines, the read goes on as without it.
     */
    const readBlob = (
      file: string,
      place: ((head: Uint8Array, size: number) => Places | undefined) | undefined,
      onPiece: ((piece: Uint8Array) => void) | undefined
    ) =>
      Effect.tryPromise({
        try: async (): Promise<Option.Option<ReadonlyArray<Uint8Array>>> => {
          const handle = await NodeFs.promises.open(file, OPEN_BLOB)
          try {
            const stat = await handle.stat()
            if (!stat.isFile()) return Option.none()
            const size = stat.size
            let head: Uint8Array | undefined
            let views: ReadonlyArray<Uint8Array> | undefined
            let inFlight = 1
            if (place !== undefined) {
              head = Buffer.allocUnsafe(Math.min(HEAD_BYTES, size))
              const got = await readViews(handle, [head], 0, undefined, Infinity)
              head = head.subarray(0, got)
              // A blob that ended before its head could not be planned from: read as it is.
              const places = got === Math.min(HEAD_BYTES, size) ? place(head, size) : undefined
              if (places?.ready !== undefined) await places.ready
              views = places?.views
              if (places?.touched !== true) inFlight = FRESH_READS_IN_FLIGHT
            }
            if (views === undefined) {
              const buffer = BufferPool.take(size)
              if (head !== undefined) buffer.set(head)
              views = [buffer]
            } else {
              copyHead(head!, views)
            }
            const from = head?.byteLength ?? 0
            if (onPiece !== undefined && from > 0) piecesOf(views, 0, from, onPiece)
            // In pieces side by side where they pay; a small blob is read in one go and handed over
            // whole, after.
            const piecewise = size > PIECE && (onPiece !== undefined || views.length > 1)
            const filled = await readViews(
              handle,
              views,
              from,
              piecewise ? onPiece : undefined,
              piecewise ? PIECE : Infinity,
              inFlight
            )
            if (onPiece !== undefined && !piecewise && filled > from) piecesOf(views, from, filled, onPiece)
            return Option.some(filled === size ? views : cut(views, filled))
          } finally {
            await handle.close()
          }
        },
        catch: (cause) => systemError("open", file, cause)
      })

    const read = (
      method: string,
      id: string,
      place: Parameters<typeof readBlob>[1],
      onPiece?: (piece: Uint8Array) => void
    ) =>
      Effect.zipRight(
        BlobId.validateId(id, method),
        readBlob(Path.join(shardOf(directory, id), id), place, onPiece).pipe(
          Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<ReadonlyArray<Uint8Array>>())),
          Effect.mapError(toStorageError(method, "ReadFailed", id))
        )
      )

    const get = Effect.fn("BlobStore.get")(function*(id: string, onPiece?: (piece: Uint8Array) => void) {
      return Option.map(yield* read("BlobStore.get", id, undefined, onPiece), (views) => views[0]!)
    })

    const getPlaced = Effect.fn("BlobStore.get")(function*(
      id: string,
      place: (head: Uint8Array, size: number) => Places | undefined,
      onPiece?: (piece: Uint8Array) => void
    ) {
      return yield* read("BlobStore.get", id, place, onPiece)
    })

    const remove = Effect.fn("BlobStore.delete")(function*(id: string) {
      yield* BlobId.validateId(id, "BlobStore.delete")
      return yield* fs.remove(Path.join(shardOf(directory, id), id)).pipe(
        Effect.as(true),
        Effect.catchIf(isNotFound, () => Effect.succeed(false)),
        Effect.mapError(toStorageError("BlobStore.delete", "DeleteFailed", id))
      )
    })

    const has = Effect.fn("BlobStore.has")(function*(id: string) {
      yield* BlobId.validateId(id, "BlobStore.has")
      return yield* fs.exists(Path.join(shardOf(directory, id), id)).pipe(
        Effect.mapError(toStorageError("BlobStore.has", "ReadFailed", id))
      )
    })

    const list = walk(fs, directory, "BlobStore.list").pipe(
      Effect.map(({ blobs }) => blobs.map((found) => found.id)),
      Effect.withSpan("BlobStore.list")
    )

    const clear = Effect.gen(function*() {
      const { blobs, temps } = yield* walk(fs, directory, "BlobStore.clear")
      const removeAll = (found: ReadonlyArray<Found>) =>
        Effect.forEach(found, (file) =>
          fs.remove(file.path, { force: true }).pipe(
            Effect.mapError(toStorageError("BlobStore.clear", "DeleteFailed", file.id))
          ), { concurrency: 16, discard: true })
      yield* removeAll(temps)
      yield* removeAll(blobs)
      return blobs.length
    }).pipe(Effect.withSpan("BlobStore.clear"))

    // File times come from the operating system's clock: ages are measured on it too (not on a
    // TestClock a test may have provided).
    const onFiles = <A>(effect: Effect.Effect<A, StorageError, FileSystem.FileSystem>) =>
      effect.pipe(Effect.provideService(FileSystem.FileSystem, fs), Effect.withClock(systemClock))
    const listAged = (olderThan: number) =>
      onFiles(
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.map(blobFiles(directory), (files) =>
            files.filter((f) =>
              Option.isSome(f.modified) && f.modified.value.getTime() < now - olderThan
            ).map((f) =>
              f.id
            )))
      )
    const staleTemp = (olderThan: number) =>
      onFiles(
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.map(tempFiles(directory), (temps) =>
            temps.filter((t) =>
              Option.isSome(t.modified) && t.modified.value.getTime() < now - olderThan
            ).map((t) =>
              t.path
            )))
      )
    const removeStaleTemp = (olderThan: number) => onFiles(cleanupTemp(directory, Duration.millis(olderThan)))

    return makeBlobStore({
      backend: "filesystem",
      location: directory,
      put,
      ...(options.readOnly === true ? {} : { putFilling }),
      get,
      getPlaced,
      delete: remove,
      has,
      list,
      clear,
      listAged,
      staleTemp,
      removeStaleTemp
    })
  })

/**
 * The store on Node's file system.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<BlobStore, StorageError> =>
  Layer.effect(BlobStore, make(options)).pipe(Layer.provide(NodeFileSystem.layer))

/**
 * The store with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<BlobStore, StorageError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * A temp file left by a write: in flight, or abandoned by a crashed process.
 *
 * @since 0.1.0
 * @category models
 */
export interface TempFile {
  readonly path: string
  /** The blob id the write was for. */
  readonly id: string
  readonly modified: Option.Option<Date>
}

/**
 * Every temp file under `directory`, for the cache's `verify`. A young one may belong to a write
 * still in flight (in this or another process): judge by `modified`.
 *
 * @since 0.1.0
 * @category maintenance
 */
export const tempFiles = (
  directory: string
): Effect.Effect<ReadonlyArray<TempFile>, StorageError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { temps } = yield* walk(fs, Path.resolve(directory), "BlobStore.tempFiles")
    return yield* Effect.forEach(temps, (temp) =>
      fs.stat(temp.path).pipe(
        Effect.map((info): Option.Option<TempFile> => Option.some({ ...temp, modified: info.mtime })),
        // Finished (renamed) or removed since the listing: not a leftover.
        Effect.catchIf(isNotFound, () => Effect.succeed(Option.none())),
        Effect.mapError(toStorageError("BlobStore.tempFiles", "ListFailed", temp.id))
      ), { concurrency: 16 }).pipe(Effect.map(Arr.getSomes))
  })

/**
 * A blob file with its modification time, for the cache's `verify`.
 *
 * @since 0.1.0
 * @category models
 */
export interface BlobFile {
  readonly id: string
  readonly modified: Option.Option<Date>
}

/**
 * Every blob under `directory` with its modification time, for the cache's `verify`: a young
 * blob without a row may belong to a put whose row is not committed yet (in any process).
 *
 * @since 0.1.0
 * @category maintenance
 */
export const blobFiles = (
  directory: string
): Effect.Effect<ReadonlyArray<BlobFile>, StorageError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { blobs } = yield* walk(fs, Path.resolve(directory), "BlobStore.blobFiles")
    return yield* Effect.forEach(blobs, (blob) =>
      fs.stat(blob.path).pipe(
        Effect.map((info): Option.Option<BlobFile> => Option.some({ id: blob.id, modified: info.mtime })),
        // Removed since the listing: no longer an orphan.
        Effect.catchIf(isNotFound, () => Effect.succeed(Option.none())),
        Effect.mapError(toStorageError("BlobStore.blobFiles", "ListFailed", blob.id))
      ), { concurrency: 16 }).pipe(Effect.map(Arr.getSomes))
  })

/**
 * Removes temp files last modified longer than `olderThan` ago (by `Clock`); returns how many.
 * Pick an age no write takes (minutes), so writes in flight are left alone.
 *
 * @since 0.1.0
 * @category maintenance
 */
export const cleanupTemp = (
  directory: string,
  olderThan: Duration.DurationInput
): Effect.Effect<number, StorageError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const now = yield* Clock.currentTimeMillis
    const cutoff = now - Duration.toMillis(Duration.decode(olderThan))
    const stale = (yield* tempFiles(directory)).filter((temp) =>
      Option.match(temp.modified, { onNone: () => true, onSome: (date) => date.getTime() <= cutoff })
    )
    yield* Effect.forEach(stale, (temp) =>
      fs.remove(temp.path, { force: true }).pipe(
        Effect.mapError(toStorageError("BlobStore.cleanupTemp", "DeleteFailed", temp.id))
      ), { concurrency: 16, discard: true })
    return stale.length
  })
