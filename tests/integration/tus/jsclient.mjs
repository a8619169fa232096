// Real client against the TUS endpoint: tus-js-client (npm) uploads 64 MiB, aborted after
// 20 MB by one process and resumed by a second; then a parallelUploads: 4 upload
// (concatenation). Both results are checked byte for byte, with their seeds.
// Env: TUS_NPM_DIR (node_modules with tus-js-client), and either TUS_HARNESS (spawned here) or
// TUS_ENDPOINT + TUS_COMPLETE_DIR (a running node).
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startHarness, checkSeed, assert, eq, tmpdir, runCases, head, waitFor } from './lib.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const work = tmpdir('tus-js-')
fs.symlinkSync(path.join(process.env.TUS_NPM_DIR, 'node_modules'), path.join(work, 'node_modules'))
fs.copyFileSync(path.join(here, 'client.mjs'), path.join(work, 'client.mjs'))

function client(args) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(work, 'client.mjs'), ...args.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d) => { out += d })
    p.stderr.on('data', (d) => { out += d })
    const t = setTimeout(() => p.kill('SIGKILL'), 90000)
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, out }) })
  })
}

async function target() {
  if (process.env.TUS_ENDPOINT) {
    return { endpoint: process.env.TUS_ENDPOINT, complete: process.env.TUS_COMPLETE_DIR, stop: async () => {} }
  }
  const h = await startHarness({})
  const stop = async () => {
    try { await h.stop() } finally { fs.rmSync(h.root, { recursive: true, force: true }) }
  }
  return { endpoint: `http://127.0.0.1:${h.port}/files/`, complete: h.complete, h, stop }
}

const cases = {
  'tus-js-client: 64 MiB, abort at 20 MB, resume from a second process': async () => {
    const t = await target()
    try {
      const file = path.join(work, 'js-resume.bin')
      const data = crypto.randomBytes(64 * 1024 * 1024)
      fs.writeFileSync(file, data)
      const store = path.join(work, 'urls-resume.json')
      const a = await client([file, t.endpoint, store, 20000000, 1])
      eq(a.code, 2, 'first process aborts: ' + a.out)
      const url = /url=(\S+)/.exec(a.out)[1]
      const port = Number(new URL(url).port)
      const off = Number((await head(port, new URL(url).pathname)).h('upload-offset'))
      assert(off > 0 && off < data.length, 'partial offset on the server: ' + off)
      const b = await client([file, t.endpoint, store, 0, 1])
      eq(b.code, 0, 'second process finishes: ' + b.out)
      const m = /DONE url=(\S+) resumedFrom=(\d+)/.exec(b.out)
      eq(m[1], url, 'same upload URL (resumed, not restarted)')
      assert(Number(m[2]) > 0, 'resumed from ' + m[2])
      const dest = path.join(t.complete, 'js-resume.bin')
      await waitFor(() => fs.existsSync(dest + '.ok'), 10000, 'file in complete_dir')
      const seed = checkSeed(dest, data)
      eq((await head(port, new URL(url).pathname)).h('p2p-info-hash'), seed.infoHash, 'P2P-Info-Hash')
      eq(JSON.parse(fs.readFileSync(store, 'utf8') || '{}') && Object.keys(JSON.parse(fs.readFileSync(store, 'utf8'))).length, 0, 'URL storage emptied on success')
    } finally { await t.stop() }
  },
  'tus-js-client: parallelUploads 4 (concatenation)': async () => {
    const t = await target()
    try {
      const file = path.join(work, 'js-par.bin')
      const data = crypto.randomBytes(64 * 1024 * 1024 + 12345)
      fs.writeFileSync(file, data)
      const r = await client([file, t.endpoint, path.join(work, 'urls-par.json'), 0, 4])
      eq(r.code, 0, 'upload: ' + r.out)
      const dest = path.join(t.complete, 'js-par.bin')
      await waitFor(() => fs.existsSync(dest + '.ok'), 10000, 'file in complete_dir')
      checkSeed(dest, data)
      if (t.h) eq(t.h.finished.length, 1, 'only the final is a file (partials are not)')
    } finally { await t.stop() }
  },
}

const code = await runCases(cases, process.argv[2])
fs.rmSync(work, { recursive: true, force: true })
process.exit(code)
