/**
 * What the `cacheness` command prints: escaped stored text, raw values from `get`, Arrow tables,
 * durations, plurals, colour, a closed pipe, infinite expiry. The BUILT bin in child processes;
 * the pure formatters directly.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { tableFromArrays, tableFromIPC } from "apache-arrow"
import Database from "better-sqlite3"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { formatDuration, formatExpiry } from "../src/cli/format.js"
import { cacheness } from "../src/index.js"
import { ensureBuilt, root } from "./support/build.js"
import { makeTempDir } from "./support/tmp.js"

const bin = path.join(root, "dist/cli/main.js")

interface Run {
  readonly status: number | null
  readonly stdout: Buffer
  readonly stderr: string
}

const cli = (
  args: ReadonlyArray<string>,
  options: { env?: Record<string, string>; closeEarly?: boolean } = {}
): Promise<Run> =>
  new Promise((resolve, reject) => {
    const { CACHENESS_DIR: _, NO_COLOR: __, ...inherited } = process.env
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: root,
      env: { ...inherited, CACHENESS_PROGRESS: "never", ...options.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const chunks: Array<Buffer> = []
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => {
      chunks.push(d)
      // Like `| head -c N`: read a little, then close the pipe.
      if (options.closeEarly === true) child.stdout.destroy()
    })
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stdout: Buffer.concat(chunks), stderr }))
  })

/** Any control character a terminal could act on, other than the line breaks of the layout. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/

const EVIL = "evil\u001b[2J\u001b]0;pwned\u0007\u009b31m\r\nFAKE OK\u007f"

const dirs: Array<string> = []
const freshDir = () => {
  const dir = makeTempDir()
  dirs.push(dir)
  return dir
}

beforeAll(ensureBuilt, 180_000)
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
})

describe("cacheness CLI output", () => {
  let dir: string
  let keys: Record<string, string>
  const floats = new Float64Array([1.5, -2.25, Math.PI])
  const arrow = tableFromArrays({ id: Int32Array.from([1, 2, 3]), name: ["alpha", "beta", "gamma"] })
  beforeAll(async () => {
    dir = freshDir()
    const cache = cacheness({ directory: dir, cleanupOnOpen: false })
    keys = {
      evil: await cache.put({ [`k${EVIL}`]: EVIL }, { [EVIL]: EVIL }, {
        description: EVIL,
        namespace: `ns${EVIL}`,
        metadata: { note: EVIL }
      }),
      floats: await cache.put({ name: "floats" }, floats, { ttl: "48 hours" }),
      arrow: await cache.put({ name: "arrow" }, arrow),
      big: await cache.put({ name: "big" }, "x".repeat(4 * 1024 * 1024)),
      forever: await cache.put({ name: "forever" }, "infinite", { ttl: "1 hour" })
    }
    await cache.close()
    // An entry whose expiry is Infinity, as earlier releases stored `ttl: Infinity`.
    const db = new Database(path.join(dir, "cacheness.db"))
    db.prepare("UPDATE cacheness_entries SET expires_at = 9e999 WHERE key = ?").run(keys.forever)
    db.close()
  }, 60_000)

  it(
    "stored text with control characters is escaped in every human-readable output; --json stays valid and exact",
    async () => {
      const [list, stats, inspect, listJson, inspectJson] = await Promise.all([
        cli(["list", "--dir", dir]),
        cli(["stats", "--dir", dir]),
        cli(["inspect", keys.evil, "--dir", dir]),
        cli(["list", "--dir", dir, "--json"]),
        cli(["inspect", keys.evil, "--dir", dir, "--json"])
      ])
      for (const run of [list, stats, inspect]) {
        assert.strictEqual(run.status, 0, run.stderr)
        const text = run.stdout.toString("utf8")
        assert.notMatch(text, RAW_CONTROL)
        assert.notMatch(text, /^FAKE OK/m)
      }
      assert.include(list.stdout.toString(), "evil\\x1b[2J")
      assert.include(inspect.stdout.toString(), "\\x9b31m\\r\\nFAKE OK\\x7f")
      for (const run of [listJson, inspectJson]) {
        assert.strictEqual(run.status, 0, run.stderr)
        assert.notMatch(run.stdout.toString("utf8"), RAW_CONTROL)
      }
      const entry = JSON.parse(listJson.stdout.toString()).find((e: any) => e.key === keys.evil)
      assert.strictEqual(entry.description, EVIL)
      assert.strictEqual(entry.namespace, `ns${EVIL}`)
      const inspected = JSON.parse(inspectJson.stdout.toString())
      assert.deepStrictEqual(inspected.value, { [EVIL]: EVIL })
    },
    60_000
  )

  it("get writes a typed array's raw bytes and an Arrow table as Arrow IPC", async () => {
    const [f, a] = await Promise.all([cli(["get", keys.floats, "--dir", dir]), cli(["get", keys.arrow, "--dir", dir])])
    assert.strictEqual(f.status, 0, f.stderr)
    assert.deepStrictEqual(new Float64Array(new Uint8Array(f.stdout).slice().buffer), floats)
    assert.strictEqual(a.status, 0, a.stderr)
    const table = tableFromIPC(new Uint8Array(a.stdout))
    assert.deepStrictEqual(table.schema.fields.map((field) => field.name), ["id", "name"])
    assert.deepStrictEqual(table.toArray().map((row) => row.toJSON()), arrow.toArray().map((row) => row.toJSON()))
  }, 60_000)

  it("inspect shows an Arrow table's schema and first rows, not its internals", async () => {
    const run = await cli(["inspect", keys.arrow, "--dir", dir])
    assert.strictEqual(run.status, 0, run.stderr)
    const text = run.stdout.toString()
    assert.include(text, "Arrow table: 3 rows, 2 columns")
    assert.match(text, /id: Int32/)
    assert.match(text, /name: .*Utf8/)
    assert.match(text, /1\s+alpha/)
    assert.notInclude(text, "batches")
    assert.notInclude(text, "RecordBatch")
  }, 60_000)

  it("inspect and list of an entry with an infinite expiry: 'never', no RangeError", async () => {
    const [inspect, list] = await Promise.all([
      cli(["inspect", keys.forever, "--dir", dir]),
      cli(["list", "--dir", dir])
    ])
    assert.strictEqual(inspect.status, 0, inspect.stderr)
    assert.match(inspect.stdout.toString(), /^expires\s+never$/m)
    assert.strictEqual(list.status, 0, list.stderr)
    const row = list.stdout.toString().split("\n").find((line) => line.startsWith(keys.forever))
    assert.match(row!, /never/)
  }, 60_000)

  it("list shows a 48-hour TTL as 'in 48 h'; durations round instead of truncating", async () => {
    const run = await cli(["list", "--dir", dir])
    const row = run.stdout.toString().split("\n").find((line) => line.startsWith(keys.floats))
    assert.match(row!, /in 48 h/)
    const H = 3_600_000
    assert.strictEqual(formatDuration(48 * H - 50), "48 h")
    assert.strictEqual(formatDuration(48 * H), "2 d")
    assert.strictEqual(formatDuration(36 * H), "36 h")
    assert.strictEqual(formatDuration(72 * H - 1000), "3 d")
    assert.strictEqual(formatDuration(90 * 60_000), "90 min")
    assert.strictEqual(formatDuration(59_600), "60 s")
    assert.strictEqual(formatDuration(1_400), "1 s")
    assert.strictEqual(formatDuration(0), "0 s")
    assert.strictEqual(formatExpiry(1e308, 0), "in over 1,000,000 d")
    assert.strictEqual(formatExpiry(Infinity, 0), "never")
  }, 60_000)

  it("verify says 'checked 1 entry' and '1 problem'", async () => {
    const one = freshDir()
    const cache = cacheness({ directory: one, cleanupOnOpen: false })
    await cache.put({ only: 1 }, new Uint8Array(randomBytes(50_000)))
    await cache.close()
    const ok = await cli(["verify", "--dir", one])
    assert.strictEqual(ok.status, 0, ok.stderr)
    assert.include(ok.stdout.toString(), "checked 1 entry: no problems")
    // Delete the one blob: a dangling entry.
    const blobs = path.join(one, "blobs")
    for (const f of fs.readdirSync(blobs, { recursive: true, withFileTypes: true }) as Array<fs.Dirent>) {
      if (f.isFile()) fs.rmSync(path.join(f.parentPath ?? (f as any).path, f.name))
    }
    const bad = await cli(["verify", "--dir", one])
    assert.strictEqual(bad.status, 1)
    assert.include(bad.stdout.toString(), "checked 1 entry: 1 problem")
    assert.include(bad.stderr, "1 problem remains")
  }, 60_000)

  it("help has no ANSI codes when piped, nor with NO_COLOR on a terminal", async () => {
    const piped = await cli(["--help"])
    assert.strictEqual(piped.status, 0, piped.stderr)
    assert.include(piped.stdout.toString(), "USAGE")
    assert.notInclude(piped.stdout.toString(), "\u001b[")
    // A real terminal through script(1): colour by default, none with NO_COLOR.
    const tty = (env: Record<string, string>) =>
      new Promise<string>((resolve, reject) => {
        const { NO_COLOR: _, ...inherited } = process.env
        const child = spawn("script", ["-qec", `${process.execPath} ${bin} --help`, "/dev/null"], {
          env: { ...inherited, ...env },
          stdio: ["ignore", "pipe", "pipe"]
        })
        let out = ""
        child.stdout.setEncoding("utf8").on("data", (d) => (out += d))
        child.on("error", reject)
        child.on("close", () => resolve(out))
      })
    const [colored, noColor] = await Promise.all([tty({}), tty({ NO_COLOR: "1" })])
    assert.include(colored, "\u001b[")
    assert.include(noColor, "USAGE")
    assert.notInclude(noColor, "\u001b[")
  }, 60_000)

  it("get KEY | head: a reader closing the pipe early ends the command quietly with exit 0", async () => {
    const run = await cli(["get", keys.big, "--dir", dir], { closeEarly: true })
    assert.strictEqual(run.status, 0, run.stderr)
    assert.notInclude(run.stderr, "EPIPE")
    assert.strictEqual(run.stderr, "")
  }, 60_000)
})
