/**
 * Keyv on cacheness: KeyvCacheness as the storage adapter, Keyv namespaces as cacheness
 * namespaces, Keyv TTLs as entry TTLs. Run with `tsx examples/keyv.ts [directory]`.
 */
import { Keyv } from "keyv"
import { cacheness } from "../src/index.js"
import { KeyvCacheness } from "../src/keyv.js"

const directory = process.argv[2] ?? "./.cacheness-keyv"
// One client for the whole app; one adapter per Keyv (Keyv sets the adapter's namespace).
// A store, not a cache: no default TTL and no size limit unless you set them.
const client = cacheness({ directory, defaultTtl: null, maxSize: null })
const users = new Keyv({ store: new KeyvCacheness(client), namespace: "users" })
const sessions = new Keyv({ store: new KeyvCacheness(client), namespace: "sessions" })

await users.set("ada", { name: "Ada Lovelace" })
await sessions.set("ada", { token: "t-1" }, 60_000) // expires in a minute
await users.setMany([{ key: "alan", value: { name: "Alan Turing" } }, {
  key: "grace",
  value: { name: "Grace Hopper" }
}])

console.log("user", (await users.get<{ name: string }>("ada"))?.name)
console.log("session", (await sessions.get<{ token: string }>("ada"))?.token)
console.log("many", (await users.getMany<{ name: string }>(["alan", "nobody"])).map((u) => u?.name ?? null).join(","))
const names: Array<string> = []
for await (const [key] of users.iterator()) names.push(String(key))
console.log("users", names.join(","))
await sessions.clear() // this namespace only
console.log("after clear", await users.has("ada"), await sessions.has("ada"))
console.log("entries", (await client.stats({ namespace: "users" })).entries)
await client.close()
