// Removes from package-lock.json the optional dependencies that the lockfile has no entry for.
//
// This machine's npm registry mirror serves only the platform packages it can run (e.g.
// @duckdb/node-bindings-linux-x64, not -darwin-arm64). `npm install` then writes a lockfile whose
// packages list optional platform dependencies it could not resolve, and `npm ci` refuses such a
// lockfile as "out of sync". Pruning those dangling names keeps `npm ci` working; run this after
// every `npm install` that changes the lockfile: `node scripts/prune-lock.mjs`.
import * as fs from "node:fs"

const file = new URL("../package-lock.json", import.meta.url)
const lock = JSON.parse(fs.readFileSync(file, "utf8"))
let pruned = 0
for (const [path, entry] of Object.entries(lock.packages)) {
  if (entry.optionalDependencies === undefined) continue
  for (const name of Object.keys(entry.optionalDependencies)) {
    const nested = `${path}/node_modules/${name}`
    if (lock.packages[`node_modules/${name}`] === undefined && lock.packages[nested] === undefined) {
      delete entry.optionalDependencies[name]
      pruned++
    }
  }
  if (Object.keys(entry.optionalDependencies).length === 0) delete entry.optionalDependencies
}
fs.writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`)
console.log(`prune-lock: removed ${pruned} unresolvable optional dependencies`)
