import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
const dir = fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith("prof-")).map((d) => path.join(os.tmpdir(), d)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0]
const db = new Database(path.join(dir, "cacheness.db"))
const cols = `key, namespace, description, format, codec, stored_bytes AS storedBytes,
  raw_bytes AS rawBytes, checksum, blob_id AS blobId, created_at AS createdAt,
  accessed_at AS accessedAt, expires_at AS expiresAt, hits, params, metadata`
for (const [name, sql] of [
  ["full ordered", `SELECT ${cols} FROM cacheness_entries ORDER BY created_at ASC, key ASC LIMIT -1 OFFSET 0`],
  ["full unordered", `SELECT ${cols} FROM cacheness_entries`],
  ["key only", `SELECT key FROM cacheness_entries`],
  ["count", `SELECT count(*) FROM cacheness_entries`],
]) {
  const st = db.prepare(sql)
  for (let i = 0; i < 3; i++) {
    const t = performance.now()
    const rows = st.all()
    console.log(name, (performance.now() - t).toFixed(1), rows.length)
  }
}
console.log(fs.statSync(path.join(dir, "cacheness.db")).size, fs.existsSync(path.join(dir, "cacheness.db-wal")) && fs.statSync(path.join(dir, "cacheness.db-wal")).size)
{
  const st = db.prepare(`SELECT key, namespace, description, format, codec, stored_bytes, raw_bytes, checksum, blob_id, created_at, accessed_at, expires_at, hits, params, metadata FROM cacheness_entries`).raw(true)
  for (let i = 0; i < 5; i++) {
    const t = performance.now()
    const rows = st.all() as Array<Array<any>>
    const t1 = performance.now()
    const recs = rows.map((r) => ({ key: r[0], namespace: r[1], description: r[2], format: r[3], codec: r[4], storedBytes: r[5], rawBytes: r[6], checksum: r[7], blobId: r[8], createdAt: r[9], accessedAt: r[10], expiresAt: r[11], hits: r[12], params: r[13], metadata: r[14], inline: null }))
    const t2 = performance.now()
    recs.sort((a, b) => a.createdAt - b.createdAt || (a.key < b.key ? -1 : 1))
    const t3 = performance.now()
    const ps = JSON.parse(`[${recs.map((r) => r.params ?? "null").join(",")}]`)
    const t4 = performance.now()
    const ps2 = recs.map((r) => r.params === null ? null : JSON.parse(r.params))
    const t5 = performance.now()
    console.log("raw", (t1 - t).toFixed(1), "objs", (t2 - t1).toFixed(1), "sort", (t3 - t2).toFixed(1), "bulk parse", (t4 - t3).toFixed(1), "each parse", (t5 - t4).toFixed(1), ps.length + ps2.length)
  }
}
