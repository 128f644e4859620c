// A child process for the multi-process test: writes its own keys, waits until every worker has
// written, then reads every worker's keys and reports what it found.
import * as fs from "node:fs"
import * as path from "node:path"
import { cacheness } from "../../src/index.js"

const [directory, idText, workersText, countText] = process.argv.slice(2)
const id = Number(idText)
const workers = Number(workersText)
const count = Number(countText)

const valueOf = (worker: number, i: number) =>
  i % 100 === 7
    ? { worker, i, payload: `${worker}:${i}:`.repeat(2_000) } // a blob-sized value every hundred
    : { worker, i, payload: `${worker}-${i}` }

const cache = cacheness({ directory, maxSize: null })
for (let i = 0; i < count; i++) await cache.put({ worker: id, i, kind: "mp" }, valueOf(id, i))
fs.writeFileSync(path.join(directory, `done-${id}`), "")
while (fs.readdirSync(directory).filter((f) => f.startsWith("done-")).length < workers) {
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
process.stdout.write(JSON.stringify({ found, wrong }))
