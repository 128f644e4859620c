import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
const root = fs.mkdtempSync("/tmp/warmprobe-")
for (let d = 0; d < 20; d++) { fs.mkdirSync(path.join(root, `p${d}`)); for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(root, `p${d}`, `f${i}`), "x") }
const files: string[] = []
let t = performance.now()
for (let r = 0; r < 5; r++) {
  files.length = 0
  t = performance.now()
  for (const d of fs.readdirSync(root, { withFileTypes: true })) for (const f of fs.readdirSync(path.join(root, d.name), { withFileTypes: true })) files.push(path.join(root, d.name, f.name))
  const t1 = performance.now()
  for (const f of files) fs.statSync(f, { bigint: true })
  const t2 = performance.now()
  for (const f of files) fs.statSync(f)
  const t3 = performance.now()
  console.log("readdir", (t1 - t).toFixed(2), "stat bigint", (t2 - t1).toFixed(2), "stat", (t3 - t2).toFixed(2))
}
const db = new Database(path.join(root, "x.db"))
db.exec("CREATE TABLE fp (path TEXT PRIMARY KEY, stat TEXT, hash TEXT) WITHOUT ROWID")
const ins = db.prepare("INSERT INTO fp VALUES (?, ?, ?)")
db.transaction(() => { for (const f of files) ins.run(f, "1:2:3:4:5", "0123456789abcdef") })()
const get = db.prepare("SELECT path, stat, hash FROM fp WHERE path = ?")
const range = db.prepare("SELECT path, stat, hash FROM fp WHERE path >= ? AND path < ?")
for (let r = 0; r < 5; r++) {
  t = performance.now()
  for (const f of files) get.get(f)
  const t1 = performance.now()
  range.all(root + "/", root + "0")
  const t2 = performance.now()
  console.log("gets", (t1 - t).toFixed(2), "range", (t2 - t1).toFixed(2))
}
fs.rmSync(root, { recursive: true })
