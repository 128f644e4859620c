/**
 * A cacheness put beside bare better-sqlite3 in one process, interleaved: autocommit INSERT into a
 * two-column table (SQLite's default and cacheness's 16,384-page autocheckpoint), the same inside
 * BEGIN IMMEDIATE, and the Promise put (wall µs per write, 10,000 each, 3 rounds): the floor of the
 * 10k-puts target of issue 21. `npx tsx bench/putFloor.ts`.
 */
import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as v8 from "node:v8"
import { cacheness } from "../src/index.js"
import { keyOf, valueOf } from "./support.js"

const N = 10_000
const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-putfloor-"))

const raw = (tx: boolean, autocheckpoint: boolean) => {
  const directory = dir()
  const db = new Database(path.join(directory, "raw.db"))
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = NORMAL")
  if (autocheckpoint) db.pragma("wal_autocheckpoint = 16384")
  db.exec("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB)")
  const insert = db.prepare("INSERT INTO kv VALUES (?, ?)")
  const select = db.prepare("SELECT 1 FROM kv WHERE key = ?")
  const inTx = db.transaction((k: string, v: Buffer) => {
    select.get(k)
    insert.run(k, v)
  })
  const keys = Array.from({ length: N }, (_, i) => JSON.stringify(keyOf(i)))
  const t0 = performance.now()
  for (let i = 0; i < N; i++) {
    if (tx) inTx.immediate(keys[i], v8.serialize(valueOf(i)))
    else insert.run(keys[i], v8.serialize(valueOf(i)))
  }
  const us = (performance.now() - t0) * 1000 / N
  db.close()
  fs.rmSync(directory, { recursive: true, force: true })
  return us
}

const ours = async () => {
  const directory = dir()
  const cache = cacheness({ directory, maxSize: null })
  await cache.has({ warm: 1 })
  const t0 = performance.now()
  for (let i = 0; i < N; i++) await cache.put(keyOf(i), valueOf(i))
  const us = (performance.now() - t0) * 1000 / N
  await cache.close()
  fs.rmSync(directory, { recursive: true, force: true })
  return us
}

await ours()
for (let r = 0; r < 3; r++) {
  console.log(
    `raw autocommit ${raw(false, false).toFixed(1)} µs | raw autocommit, autocheckpoint 16384 ${
      raw(false, true).toFixed(1)
    } | raw BEGIN IMMEDIATE ${raw(true, true).toFixed(1)} | cacheness put ${(await ours()).toFixed(1)} µs`
  )
}
