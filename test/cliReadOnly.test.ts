/**
 * The CLI's looking commands (`stats`, `list`, `inspect`, `get`, `verify` without `--repair`)
 * open the cache read-only: the BUILT bin, in a real child process, on real directories.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { cacheness } from "../src/index.js"
import { ensureBuilt, root } from "./support/build.js"
import { makeTempDir } from "./support/tmp.js"

const bin = path.join(root, "dist/cli/main.js")

interface Run {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

const cli = (args: ReadonlyArray<string>): Promise<Run> =>
  new Promise((resolve, reject) => {
    const { CACHENESS_DIR: _, ...inherited } = process.env
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: root,
      env: { ...inherited, CACHENESS_PROGRESS: "never" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })

/** Every path below `dir` (directories too) with the hash of each file's bytes. */
const snapshot = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as Array<fs.Dirent>) {
    const full = path.join(entry.parentPath ?? (entry as any).path, entry.name)
    const rel = path.relative(dir, full)
    out[rel] = entry.isDirectory() ? "dir" : createHash("sha256").update(fs.readFileSync(full)).digest("hex")
  }
  return out
}

const dirs: Array<string> = []
const freshDir = () => {
  const dir = makeTempDir()
  dirs.push(dir)
  return dir
}

/** A closed cache with an inline entry, a blob entry and an expired one; the keys. */
const seed = async (directory: string) => {
  const cache = cacheness({ directory, cleanupOnOpen: false })
  const small = await cache.put({ name: "small" }, { results: [1, 2, 3] }, { description: "scores" })
  const large = await cache.put({ name: "large" }, new Uint8Array(randomBytes(40_000)))
  await cache.put({ name: "expired" }, "gone", { ttl: 1 })
  await cache.get({ name: "small" })
  await cache.close()
  return { small, large }
}

const LOOKING = (key: string, dir: string) => [
  ["stats", "--dir", dir],
  ["list", "--dir", dir],
  ["list", "--dir", dir, "--json"],
  ["inspect", key, "--dir", dir],
  ["get", key, "--dir", dir],
  ["verify", "--dir", dir]
]

beforeAll(ensureBuilt, 180_000)
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
})

describe("cacheness CLI, read-only commands", () => {
  it(
    "on a damaged database: exit 4, a clear message, and the directory byte-identical (nothing renamed or created)",
    async () => {
      const dir = freshDir()
      const { small } = await seed(dir)
      const db = path.join(dir, "cacheness.db")
      // The SQLite header overwritten: "file is not a database".
      const fd = fs.openSync(db, "r+")
      fs.writeSync(fd, Buffer.from("this is no database header"), 0, 26, 0)
      fs.closeSync(fd)
      const before = snapshot(dir)
      for (const args of LOOKING(small, dir)) {
        const run = await cli(args)
        assert.strictEqual(run.status, 4, `${args.join(" ")}: ${run.stdout}${run.stderr}`)
        assert.include(run.stderr, "damaged", args.join(" "))
        assert.include(run.stderr, "read-only", args.join(" "))
        assert.deepStrictEqual(snapshot(dir), before, `${args.join(" ")} changed the directory`)
      }
    },
    120_000
  )

  it(
    "on a damaged database, a write command still recovers it (moves it aside): only looking is read-only",
    async () => {
      const dir = freshDir()
      await seed(dir)
      fs.writeFileSync(path.join(dir, "cacheness.db"), Buffer.alloc(8192, 0x5a))
      const run = await cli(["cleanup", "--dir", dir])
      assert.strictEqual(run.status, 0, run.stderr)
      assert.isTrue(fs.readdirSync(dir).some((name) => name.startsWith("cacheness.db.corrupt-")))
    },
    60_000
  )

  it(
    "on a healthy cache: every looking command succeeds and leaves every file byte-identical (no hits recorded, no -wal left)",
    async () => {
      const dir = freshDir()
      const { large, small } = await seed(dir)
      const before = snapshot(dir)
      assert.notProperty(before, "cacheness.db-wal")
      for (const key of [small, large]) {
        for (const args of LOOKING(key, dir)) {
          const run = await cli(args)
          assert.strictEqual(run.status, 0, `${args.join(" ")}: ${run.stderr}`)
          assert.deepStrictEqual(snapshot(dir), before, `${args.join(" ")} changed the directory`)
        }
      }
      // The hit of `inspect`/`get` was not counted: the stats still show the one hit of the seed.
      const stats = JSON.parse((await cli(["stats", "--dir", dir, "--json"])).stdout)
      assert.strictEqual(stats.hits, 1)
      assert.strictEqual(stats.entries, 3)
    },
    120_000
  )

  it("while another process holds the cache open (a -wal exists), looking reads its latest commits", async () => {
    const dir = freshDir()
    const cache = cacheness({ directory: dir, cleanupOnOpen: false })
    try {
      const key = await cache.put({ name: "live" }, "fresh value", { description: "written by a live process" })
      assert.isTrue(fs.existsSync(path.join(dir, "cacheness.db-wal")))
      const [list, get] = await Promise.all([cli(["list", "--dir", dir, "--json"]), cli(["get", key, "--dir", dir])])
      assert.strictEqual(list.status, 0, list.stderr)
      assert.deepStrictEqual(JSON.parse(list.stdout).map((e: any) => e.key), [key])
      assert.strictEqual(get.status, 0, get.stderr)
      assert.strictEqual(get.stdout, "fresh value")
    } finally {
      await cache.close()
    }
  }, 60_000)
})

describe("cacheness CLI, read-only commands on a JSON-metadata cache", () => {
  it("reads it as JSON; a corrupt index: exit 4 and the directory byte-identical", async () => {
    const dir = freshDir()
    const cache = cacheness({ directory: dir, metadataBackend: "json", cleanupOnOpen: false })
    const key = await cache.put({ name: "json" }, "in a json cache")
    await cache.close()
    const before = snapshot(dir)
    const [get, list] = await Promise.all([cli(["get", key, "--dir", dir]), cli(["list", "--dir", dir, "--json"])])
    assert.strictEqual(get.status, 0, get.stderr)
    assert.strictEqual(get.stdout, "in a json cache")
    assert.deepStrictEqual(JSON.parse(list.stdout).map((e: any) => e.key), [key])
    assert.deepStrictEqual(snapshot(dir), before)
    fs.writeFileSync(path.join(dir, "cacheness.json"), "{ not json")
    const damaged = snapshot(dir)
    const stats = await cli(["stats", "--dir", dir])
    assert.strictEqual(stats.status, 4, stats.stdout)
    assert.include(stats.stderr, "corrupt")
    assert.deepStrictEqual(snapshot(dir), damaged)
  }, 60_000)
})
