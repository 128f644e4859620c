import fs from "node:fs"
const f = fs.readdirSync("scratch/cpu")[0]
const p = JSON.parse(fs.readFileSync("scratch/cpu/" + f))
const self = new Map()
const dt = p.timeDeltas
const byId = new Map(p.nodes.map((n) => [n.id, n]))
p.samples.forEach((id, i) => { const n = byId.get(id); const k = `${n.callFrame.functionName || "(anon)"} ${n.callFrame.url.split("/").slice(-2).join("/")}:${n.callFrame.lineNumber}`; self.set(k, (self.get(k) ?? 0) + (dt[i] ?? 0)) })
console.log([...self].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `${(v / 1000).toFixed(0).padStart(6)} ms ${k}`).join("\n"))
