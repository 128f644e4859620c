/**
 * Remote file caching: downloads kept in the cache and revalidated by ETag, like the seed's S3
 * example. A local HTTP server stands in for S3 (or any object store with ETags).
 *
 * The first `download` fetches the file and stores its bytes with the server's ETag as entry
 * metadata. Later calls send `If-None-Match`: a `304 Not Modified` costs a round trip but no
 * transfer, and the cached bytes are returned; when the object changed, the new bytes replace the
 * old. Run: `npx tsx examples/remote-file-caching.ts [directory]`
 */
import { Data, Effect, Option } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Cache } from "../src/index.js"

// --- an object store on localhost ---------------------------------------------------------------
const objects = new Map<string, Buffer>([
  ["datasets/train.bin", randomBytes(2 * 1024 * 1024)],
  ["models/config.json", Buffer.from(JSON.stringify({ layers: 3, units: 128 }))]
])
const etagOf = (body: Buffer) => `"${createHash("md5").update(body).digest("hex")}"`
const log: Array<string> = []
const server = http.createServer((req, res) => {
  const body = objects.get(req.url!.slice(1))
  if (body === undefined) return void res.writeHead(404).end()
  const etag = etagOf(body)
  if (req.headers["if-none-match"] === etag) {
    log.push(`304 ${req.url}`)
    return void res.writeHead(304, { etag }).end()
  }
  log.push(`200 ${req.url} (${body.length} bytes)`)
  res.writeHead(200, { etag, "content-length": body.length }).end(body)
})

class DownloadError extends Data.TaggedError("DownloadError")<{ readonly url: string; readonly reason: string }> {}

/** The object's bytes: from the cache when the server confirms they are current. */
const download = (base: string, object: string) =>
  Effect.gen(function*() {
    const cache = yield* Cache.Cache
    const key = { url: `${base}/${object}` } // the cache key is the URL; the ETag is metadata
    const cached = yield* cache.getWithMetadata(key, { namespace: "downloads" })
    const etag = Option.flatMap(cached, (hit) => Option.fromNullable(hit.entry.metadata?.etag as string | undefined))
    const response = yield* Effect.tryPromise({
      try: () => fetch(key.url, { headers: Option.isSome(etag) ? { "if-none-match": etag.value } : {} }),
      catch: (cause) => new DownloadError({ url: key.url, reason: String(cause) })
    })
    if (response.status === 304 && Option.isSome(cached)) {
      return { bytes: cached.value.value as Uint8Array, source: "cache (304 Not Modified)" }
    }
    if (!response.ok) return yield* new DownloadError({ url: key.url, reason: `HTTP ${response.status}` })
    const bytes = new Uint8Array(yield* Effect.promise(() => response.arrayBuffer()))
    yield* cache.put(key, bytes, {
      ttl: null, // validity is the server's call, checked on every use
      namespace: "downloads",
      metadata: { etag: response.headers.get("etag"), size: bytes.length }
    })
    return { bytes, source: Option.isSome(cached) ? "downloaded (changed)" : "downloaded" }
  })

const program = (base: string) =>
  Effect.gen(function*() {
    const show = (object: string) =>
      Effect.gen(function*() {
        const started = performance.now()
        const { bytes, source } = yield* download(base, object)
        const sha = createHash("sha256").update(bytes).digest("hex").slice(0, 12)
        console.log(
          `${object.padEnd(20)} ${String(bytes.length).padStart(8)} bytes  sha256 ${sha}  ${source.padEnd(24)} ${
            (performance.now() - started).toFixed(1).padStart(7)
          } ms`
        )
      })
    yield* show("datasets/train.bin")
    yield* show("models/config.json")
    yield* show("datasets/train.bin")
    yield* show("models/config.json")
    // Someone uploads a new config: the ETag changes, the next use downloads it again.
    objects.set("models/config.json", Buffer.from(JSON.stringify({ layers: 4, units: 256 })))
    yield* show("models/config.json")
    yield* show("models/config.json")
    const missing = yield* Effect.flip(download(base, "nope.bin"))
    console.log(
      `nope.bin             ${missing._tag}: ${missing._tag === "DownloadError" ? missing.reason : missing.message}`
    )
    console.log(`server log: ${log.join("; ")}`)
  })

const directory = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-files-"))
server.listen(0, "127.0.0.1", () => {
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  Effect.runPromise(program(base).pipe(Effect.provide(Cache.layer({ directory }))))
    .catch((error) => {
      console.error(error)
      process.exitCode = 1
    })
    .finally(() => server.close())
})
