// A local S3-compatible server (s3rver) in this process, on a random loopback port, storing its
// objects in a temp directory: what the S3 blob store's tests and bench/s3.ts talk to.
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import type * as http from "node:http"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"

/** The part of s3rver's API used here (the package ships no types). */
interface S3rverInstance {
  run(): Promise<{ readonly port: number; readonly address: string }>
  close(): Promise<void>
  readonly httpServer?: http.Server
}

type S3rverClass = new(options: {
  readonly address: string
  readonly port: number
  readonly silent: boolean
  readonly directory: string
  readonly configureBuckets: ReadonlyArray<{ readonly name: string }>
}) => S3rverInstance

const require = createRequire(import.meta.url)
const S3rver = require("s3rver") as S3rverClass

// s3rver encrypts ListObjectsV2 continuation tokens with single DES, which OpenSSL 3 (Node 17+)
// no longer offers: every listing of more than 1000 keys fails with a 500. Triple DES with the key
// repeated three times is the same cipher, and the default provider has it.
const nodeCrypto = require("node:crypto") as typeof import("node:crypto")
const tripled = (key: unknown) => Buffer.concat([key as Buffer, key as Buffer, key as Buffer])
const { createCipheriv, createDecipheriv } = nodeCrypto
if (!(createCipheriv as { s3rver?: boolean }).s3rver) {
  nodeCrypto.createCipheriv = Object.assign(
    ((algorithm: string, key: any, iv: any, options?: any) =>
      algorithm === "des"
        ? createCipheriv("des-ede3-cbc", tripled(key), iv, options)
        : createCipheriv(algorithm, key, iv, options)) as typeof createCipheriv,
    { s3rver: true }
  )
  nodeCrypto.createDecipheriv = ((algorithm: string, key: any, iv: any, options?: any) =>
    algorithm === "des"
      ? createDecipheriv("des-ede3-cbc", tripled(key), iv, options)
      : createDecipheriv(algorithm, key, iv, options)) as typeof createDecipheriv
}

// s3rver removes a deleted object's emptied parent directories, and two deletes under the same one
// at once (a DeleteObjects batch) race: the loser's readdir meets ENOENT and the batch answers 500.
// The object is gone either way, so that ENOENT is no failure.
const FilesystemStore = require("s3rver/lib/stores/filesystem.js") as {
  prototype: { deleteObject: (...args: Array<unknown>) => Promise<void> }
}
const deleteObject = FilesystemStore.prototype.deleteObject
if (!(deleteObject as { patched?: boolean }).patched) {
  FilesystemStore.prototype.deleteObject = Object.assign(function(this: unknown, ...args: Array<unknown>) {
    return deleteObject.apply(this, args).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error
    })
  }, { patched: true })
}

/** s3rver's built-in account. */
export const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } as const

/** The bucket every server starts with (S3 bucket names are 3-63 characters). */
export const bucket = "cacheness-test"

export interface S3Server {
  readonly endpoint: string
  readonly directory: string
  /** Every request the server received, in order: `"PUT /bucket/key?uploadId=…"`. */
  readonly requests: ReadonlyArray<string>
  /** Calls `f` with each request as it arrives (before it is answered). */
  readonly onRequest: (f: (request: http.IncomingMessage) => void) => void
  /** Drops every open connection and stops listening: the server goes away. */
  readonly kill: () => Promise<void>
  /** `kill`, then removes the directory unless `keepDirectory`. */
  readonly stop: () => Promise<void>
}

/**
 * Starts a server; `directory` reuses another's objects (a server that comes back), else a fresh
 * temp directory owned by this server.
 */
export const startS3 = async (
  options: { readonly directory?: string; readonly keepDirectory?: boolean } = {}
): Promise<S3Server> => {
  const directory = options.directory ?? fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-s3-"))
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }]
  })
  const { port } = await server.run()
  const requests: Array<string> = []
  const http = server.httpServer!
  http.prependListener("request", (request: http.IncomingMessage) => requests.push(`${request.method} ${request.url}`))
  let killed = false
  const kill = async () => {
    if (killed) return
    killed = true
    http.closeAllConnections()
    await new Promise<void>((resolve) => http.close(() => resolve()))
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    directory,
    requests,
    onRequest: (f) => void http.prependListener("request", f),
    kill,
    stop: async () => {
      await kill()
      if (options.keepDirectory !== true && options.directory === undefined) {
        fs.rmSync(directory, { recursive: true, force: true })
      }
    }
  }
}

/** A server for the scope: stopped (and its directory removed) when the scope closes. */
export const scopedS3 = Effect.acquireRelease(
  Effect.promise(() => startS3()),
  (server) => Effect.promise(() => server.stop())
)

/**
 * A proxy in front of `target` that answers the requests `fail` picks with `status` and an S3 error
 * body (`code`), and forwards the rest: a throttled or failing S3.
 */
export const startFaultyProxy = async (
  target: string,
  fail: (request: http.IncomingMessage, seen: number) => boolean,
  error: { readonly status: number; readonly code: string } = { status: 503, code: "SlowDown" }
): Promise<{ readonly endpoint: string; readonly failed: () => number; readonly stop: () => Promise<void> }> => {
  const { createServer, request: forward } = await import("node:http")
  const to = new URL(target)
  let seen = 0
  let failed = 0
  const proxy = createServer((request, response) => {
    if (fail(request, ++seen)) {
      failed++
      request.resume()
      request.on("end", () => {
        response.writeHead(error.status, { "content-type": "application/xml" })
        response.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${error.code}</Code><Message>injected</Message></Error>`
        )
      })
      return
    }
    const upstream = forward({
      host: to.hostname,
      port: to.port,
      method: request.method,
      path: request.url,
      headers: request.headers
    }, (answer) => {
      response.writeHead(answer.statusCode ?? 500, answer.headers)
      answer.pipe(response)
    })
    upstream.on("error", () => response.destroy())
    request.pipe(upstream)
  })
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve))
  const port = (proxy.address() as { port: number }).port
  return {
    endpoint: `http://127.0.0.1:${port}`,
    failed: () => failed,
    stop: async () => {
      proxy.closeAllConnections()
      await new Promise<void>((resolve) => proxy.close(() => resolve()))
    }
  }
}
