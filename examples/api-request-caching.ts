/**
 * API request caching: a slow HTTP API behind `cached`, with a TTL strategy per endpoint.
 *
 * A local server stands in for a remote API (every response takes ~150 ms). Each endpoint gets the
 * TTL its data deserves — quotes go stale in a moment, weather in minutes, user profiles in an
 * hour, the country list never — and failed requests (HTTP 503) are not cached, so the next call
 * retries. Run: `npx tsx examples/api-request-caching.ts [directory]`
 */
import { Data, Duration, Effect } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Cache, cached } from "../src/index.js"

// --- a slow API on localhost ------------------------------------------------------------------
const served: Array<string> = []
let flakyCalls = 0
const server = http.createServer((req, res) => {
  served.push(req.url!)
  setTimeout(() => {
    const url = new URL(req.url!, "http://localhost")
    if (url.pathname === "/flaky" && flakyCalls++ === 0) {
      res.writeHead(503).end("try again")
      return
    }
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ path: url.pathname, query: Object.fromEntries(url.searchParams), at: served.length }))
  }, 150)
})

class ApiError extends Data.TaggedError("ApiError")<{ readonly status: number; readonly url: string }> {}

const request = (base: string, endpoint: string, query: Record<string, string>) =>
  Effect.tryPromise({
    try: () => fetch(`${base}${endpoint}?${new URLSearchParams(query)}`),
    catch: () => new ApiError({ status: 0, url: endpoint })
  }).pipe(
    Effect.flatMap((response) =>
      response.ok
        ? Effect.promise(() => response.json() as Promise<unknown>)
        : Effect.fail(new ApiError({ status: response.status, url: endpoint }))
    )
  )

// --- the TTL strategy: a table, one row per endpoint --------------------------------------------
const TTL: Record<string, Duration.DurationInput | null> = {
  "/quotes": "300 millis", // prices move constantly
  "/weather": "10 minutes",
  "/users": "1 hour",
  "/countries": null, // reference data: never expires
  "/flaky": "1 hour"
}

const program = (base: string) =>
  Effect.gen(function*() {
    // One memoised function per endpoint, each with its TTL. Failures are not cached (the default).
    const api = Object.fromEntries(
      Object.entries(TTL).map(([endpoint, ttl]) => [
        endpoint,
        cached((query: Record<string, string>) => request(base, endpoint, query), { name: `api${endpoint}`, ttl })
      ])
    )
    const call = (endpoint: string, query: Record<string, string>) =>
      Effect.gen(function*() {
        const before = served.length
        const started = performance.now()
        const result = yield* Effect.either(api[endpoint](query))
        const ms = performance.now() - started
        const how = result._tag === "Left"
          ? `failed (${result.left._tag === "ApiError" ? `HTTP ${result.left.status}` : result.left.message})`
          : served.length > before
          ? "fetched"
          : "cached"
        const search = new URLSearchParams(query).toString()
        console.log(
          `${`GET ${endpoint}${search === "" ? "" : `?${search}`}`.padEnd(32)} ${how.padEnd(18)} ${
            ms.toFixed(1).padStart(7)
          } ms`
        )
      })

    yield* call("/weather", { city: "Paris" })
    yield* call("/weather", { city: "Paris" })
    yield* call("/weather", { city: "Berlin" }) // other parameters: another key
    yield* call("/users", { id: "42" })
    yield* call("/users", { id: "42" })
    yield* call("/countries", {})
    yield* call("/countries", {})
    yield* call("/quotes", { symbol: "AAPL" })
    yield* call("/quotes", { symbol: "AAPL" })
    yield* Effect.sleep("400 millis") // the quote's TTL passes
    yield* call("/quotes", { symbol: "AAPL" })
    yield* call("/flaky", {})
    yield* call("/flaky", {}) // the failure was not stored: this call retries
    yield* call("/flaky", {})

    const stats = yield* (yield* Cache.Cache).stats()
    console.log(
      `server handled ${served.length} requests; cache: ${stats.entries} entries, ${stats.hits} hits, ${stats.misses} misses`
    )
  })

const directory = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-api-"))
server.listen(0, "127.0.0.1", () => {
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  Effect.runPromise(program(base).pipe(Effect.provide(Cache.layer({ directory }))))
    .catch((error) => {
      console.error(error)
      process.exitCode = 1
    })
    .finally(() => server.close())
})
