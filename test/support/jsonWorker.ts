// A child process for the JSON concurrent-writers test: puts its own keys into a shared JSON-indexed cache.
import { cacheness } from "../../src/index.js"

const [directory, idText, countText] = process.argv.slice(2)
const w = Number(idText)
const cache = cacheness({ directory, metadataBackend: "json", maxSize: null })
for (let i = 0; i < Number(countText); i++) await cache.put({ w, i }, `${w}:${i}`)
await cache.close()
