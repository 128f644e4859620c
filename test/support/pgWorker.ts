// A child process for the multi-process PostgreSQL test: runs in its own working directory, writes
// its keys (some blob-sized) to a shared PostgreSQL cache, waits for the others, reads them all.
import * as fs from "node:fs"
import * as path from "node:path"
import { cacheness } from "../../src/index.js"

const [sync, schema, idText, workersText, countText, cwd] = process.argv.slice(2)
process.chdir(cwd)
const id = Number(idText)
const workers = Number(workersText)
const count = Number(countText)

const valueOf = (worker: number, i: number) =>
  i % 20 === 7
    ? { worker, i, payload: `${worker}:${i}:`.repeat(4_000) } // a blob every twenty
    : { worker, i, payload: `${worker}-${i}` }

const cache = cacheness({
  metadataBackend: "postgres",
  blobs: "postgres",
  postgres: { url: process.env.CACHENESS_TEST_PG_URL!, schema },
  maxSize: null
})
for (let i = 0; i < count; i++) await cache.put({ worker: id, i, kind: "mp" }, valueOf(id, i))
fs.writeFileSync(path.join(sync, `done-${id}`), "")
while (fs.readdirSync(sync).filter((f) => f.startsWith("done-")).length < workers) {
  await new Promise((r) => setTimeout(r, 20))
}
let found = 0
let wrong = 0
for (let w = 0; w < workers; w++) {
  for (let i = 0; i < count; i++) {
    const got = await cache.get({ worker: w, i, kind: "mp" })
    if (got === undefined) continue
    found++
    if (JSON.stringify(got) !== JSON.stringify(valueOf(w, i))) wrong++
  }
}
await cache.close()
process.stdout.write(JSON.stringify({ found, wrong, localFiles: fs.readdirSync(cwd) }))
