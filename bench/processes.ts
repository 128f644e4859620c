/**
 * Many processes: 4 processes × 2,500 keys of ~150 B each, put at once into one cache directory,
 * through the Promise API (`cacheness(...)`), beside bare better-sqlite3 (one autocommit INSERT per
 * key, WAL, synchronous=NORMAL, a 10 s busy timeout) and python-diskcache 5.4
 * (`bench/peer/diskcache_bench.py processes`). Each worker opens its store, says ready and waits; the
 * wall time runs from "go" to the last worker's last put, so process start-up is not counted. Then
 * every key is read back: "lost" counts the missing or wrong ones.
 *
 * `npm run bench -- processes`, or `npx tsx bench/processes.ts`.
 */
import Database from "better-sqlite3"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import * as v8 from "node:v8"
import { cacheness } from "../src/index.js"
import { benchDir, diskcachePeer, fmt, isMain, ratio, table, valueOf } from "./support.js"

const PROCESSES = 4
const KEYS = 2_500

const keyOf = (p: number, i: number) => ({ proc: p, i })

type Mode = "cacheness" | "sqlite"

interface Figures {
  readonly wall: number
  readonly lost: number
}

const clock = () => performance.timeOrigin + performance.now()

/** One worker: open, say "ready", wait for a line on stdin, put its keys, print the end time. */
const worker = async (mode: Mode, directory: string, p: number) => {
  const go = new Promise<void>((resolve) =>
    readline.createInterface({ input: process.stdin }).once("line", () => resolve())
  )
  if (mode === "cacheness") {
    const cache = cacheness({ directory, maxSize: null })
    await cache.has({ warm: p })
    console.log("ready")
    await go
    for (let i = 0; i < KEYS; i++) await cache.put(keyOf(p, i), valueOf(p * KEYS + i))
    console.log(clock())
    await cache.close()
  } else {
    const db = new Database(path.join(directory, "raw.db"), { timeout: 10_000 })
    db.pragma("synchronous = NORMAL")
    const insert = db.prepare("INSERT OR REPLACE INTO kv VALUES (?, ?)")
    console.log("ready")
    await go
    for (let i = 0; i < KEYS; i++) insert.run(JSON.stringify(keyOf(p, i)), v8.serialize(valueOf(p * KEYS + i)))
    console.log(clock())
    db.close()
  }
  process.exit(0)
}

/** Starts the workers, releases them together, returns the wall time from "go" to the last put. */
const race = async (mode: Mode, directory: string): Promise<number> => {
  const children = Array.from(
    { length: PROCESSES },
    (_, p) =>
      spawn(process.execPath, [
        ...process.execArgv,
        fileURLToPath(import.meta.url),
        "--worker",
        mode,
        directory,
        String(p)
      ], {
        stdio: ["pipe", "pipe", "inherit"]
      })
  )
  const lines = children.map((child) => {
    const queue: Array<string> = []
    const waiting: Array<(line: string) => void> = []
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      const next = waiting.shift()
      if (next !== undefined) next(line)
      else queue.push(line)
    })
    child.on("exit", (code) => {
      if (code !== 0) { for (const w of waiting.splice(0)) w(`exit ${code}`) }
    })
    return () => new Promise<string>((resolve) => (queue.length > 0 ? resolve(queue.shift()!) : waiting.push(resolve)))
  })
  for (const next of lines) {
    const line = await next()
    if (line !== "ready") throw new Error(`${mode} worker failed to start: ${line}`)
  }
  const start = clock()
  for (const child of children) child.stdin!.write("go\n")
  const ends = await Promise.all(lines.map((next) => next().then(Number)))
  await Promise.all(
    children.map((child) => child.exitCode !== null ? Promise.resolve() : new Promise((r) => child.on("exit", r)))
  )
  if (ends.some(Number.isNaN)) throw new Error(`${mode}: a worker failed`)
  return Math.max(...ends) - start
}

const viaCacheness = async (directory: string): Promise<Figures> => {
  // Created once, before the workers race to open it (as the peer does).
  await cacheness({ directory, maxSize: null }).close()
  const wall = await race("cacheness", directory)
  const cache = cacheness({ directory, maxSize: null })
  let lost = 0
  for (let p = 0; p < PROCESSES; p++) {
    for (let i = 0; i < KEYS; i++) {
      const back = await cache.get(keyOf(p, i))
      if (JSON.stringify(back) !== JSON.stringify(valueOf(p * KEYS + i))) lost++
    }
  }
  await cache.close()
  return { wall, lost }
}

const viaSqlite = async (directory: string): Promise<Figures> => {
  fs.mkdirSync(directory, { recursive: true })
  const db = new Database(path.join(directory, "raw.db"))
  db.pragma("journal_mode = WAL")
  db.exec("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB)")
  db.close()
  const wall = await race("sqlite", directory)
  const check = new Database(path.join(directory, "raw.db"), { readonly: true })
  const select = check.prepare("SELECT value FROM kv WHERE key = ?").pluck()
  let lost = 0
  for (let p = 0; p < PROCESSES; p++) {
    for (let i = 0; i < KEYS; i++) {
      const back = select.get(JSON.stringify(keyOf(p, i))) as Buffer | undefined
      if (back === undefined || JSON.stringify(v8.deserialize(back)) !== JSON.stringify(valueOf(p * KEYS + i))) lost++
    }
  }
  check.close()
  return { wall, lost }
}

export const run = async (): Promise<void> => {
  const directory = benchDir("processes")
  try {
    const ours = await viaCacheness(path.join(directory, "cacheness"))
    const sqlite = await viaSqlite(path.join(directory, "sqlite"))
    const peer = diskcachePeer<Figures>("processes", directory)
    const row = (
      name: string,
      f: Figures | undefined,
      note: string
    ) => [name, fmt(f?.wall, 0), f === undefined ? "—" : String(f.lost), note]
    table(
      `processes: ${PROCESSES} processes × ${KEYS.toLocaleString("en-US")} puts of ~150 B into one directory, at once`,
      [
        ["store", "wall ms", "lost", "note"],
        row(
          "cacheness (Promise API)",
          ours,
          `${ratio(ours.wall, peer?.wall, "diskcache")} (target ≤ 1.0, nothing lost), ${
            ratio(ours.wall, sqlite.wall, "bare SQLite")
          }`
        ),
        row("python-diskcache 5.4", peer, peer === undefined ? "not installed" : "peer"),
        row("bare better-sqlite3, autocommit", sqlite, "the floor")
      ]
    )
  } finally {
    fs.rmSync(directory, { recursive: true, force: true })
  }
}

if (isMain(import.meta.url)) {
  const at = process.argv.indexOf("--worker")
  if (at >= 0) await worker(process.argv[at + 1] as Mode, process.argv[at + 2]!, Number(process.argv[at + 3]))
  else await run()
}
