import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { runChild } from "./support/child.js"
import { makeTempDir } from "./support/tmp.js"

describe("examples/api-request-caching.ts", () => {
  it("fetches each request once per TTL, per endpoint; failures are retried, not cached", async () => {
    const dir = makeTempDir()
    try {
      const result = await runChild("examples/api-request-caching.ts", [path.join(dir, "cache")])
      assert.strictEqual(result.code, 0, result.stderr)
      const outcomes = result.stdout.trim().split("\n").slice(0, -1).map((line) =>
        line.split(/\s{2,}/).slice(0, 2).join(" → ")
      )
      assert.deepStrictEqual(outcomes, [
        "GET /weather?city=Paris → fetched",
        "GET /weather?city=Paris → cached",
        "GET /weather?city=Berlin → fetched",
        "GET /users?id=42 → fetched",
        "GET /users?id=42 → cached",
        "GET /countries → fetched",
        "GET /countries → cached",
        "GET /quotes?symbol=AAPL → fetched",
        "GET /quotes?symbol=AAPL → cached",
        "GET /quotes?symbol=AAPL → fetched",
        "GET /flaky → failed (HTTP 503)",
        "GET /flaky → fetched",
        "GET /flaky → cached"
      ])
      assert.match(result.stdout, /server handled 8 requests; cache: 6 entries, 5 hits/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
