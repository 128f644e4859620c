// @ts-ignore
import pg from "pg"
const pool = new pg.Pool({ connectionString: "postgres://postgres@127.0.0.1:5432/test", max: 4 })
await pool.query("SELECT 1")
let t = performance.now()
for (let i = 0; i < 200; i++) await pool.query("SELECT 1")
console.log("raw pool select1 ms/op", ((performance.now() - t) / 200).toFixed(2))
const c = await pool.connect()
t = performance.now()
for (let i = 0; i < 200; i++) await c.query("SELECT 1")
console.log("raw client select1 ms/op", ((performance.now() - t) / 200).toFixed(2))
c.release(); await pool.end()
