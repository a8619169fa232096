// Helpers for the TUS suites: start the harness (or read a running node's port), raw HTTP/1.1
// requests over net sockets (full control over headers, chunking, trailers, half-sent bodies),
// and seed checks (infoHash as in docs/PROTOCOL.md).
import { spawn } from 'node:child_process'
import net from 'node:net'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

export function tmpdir(prefix = 'tus-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

// Starts the harness; resolves once it prints LISTENING. dirs are reused when given (restart).
export async function startHarness(opts = {}) {
  const bin = process.env.TUS_HARNESS
  if (!bin) throw new Error('TUS_HARNESS not set')
  const root = opts.root || tmpdir()
  const dir = path.join(root, 'up'), complete = path.join(root, 'done')
  const args = ['--dir', dir, '--complete', complete]
  for (const [k, v] of Object.entries(opts.flags || {})) args.push(`--${k}`, String(v))
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const h = { root, dir, complete, proc, finished: [], stderr: '', exited: null }
  let out = ''
  proc.stderr.on('data', (d) => { h.stderr += d })
  const exited = new Promise((r) => proc.on('exit', (code, sig) => { h.exited = { code, sig }; r(h.exited) }))
  h.exitedP = exited
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('harness did not start: ' + h.stderr)), 10000)
    proc.stdout.on('data', (d) => {
      out += d
      let i
      while ((i = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, i); out = out.slice(i + 1)
        const m = /^LISTENING 127\.0\.0\.1:(\d+)$/.exec(line)
        if (m) { h.port = Number(m[1]); clearTimeout(t); resolve() }
        const f = /^FINISHED (\S+) (.+) (\/\S+)$/.exec(line)
        if (f) h.finished.push({ infoHash: f[1], name: f[2], path: f[3] })
      }
    })
    exited.then(() => { clearTimeout(t); reject(new Error('harness exited: ' + h.stderr)) })
  })
  // Stops with SIGTERM and asserts a clean exit (every handle closed, no leaks under ASan).
  h.stop = async () => {
    if (h.exited) return h.exited
    proc.kill('SIGTERM')
    const t = setTimeout(() => proc.kill('SIGKILL'), 10000)
    const e = await exited
    clearTimeout(t)
    if (e.code !== 0) throw new Error(`harness exit ${e.code} ${e.sig}: ${h.stderr}`)
    return e
  }
  h.kill = async () => { if (!h.exited) { proc.kill('SIGKILL'); await exited } }
  return h
}

function parseHead(text) {
  const lines = text.split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0])
  if (!m) throw new Error('bad status line: ' + JSON.stringify(lines[0]))
  const headers = {}
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':')
    if (i <= 0) continue
    const k = l.slice(0, i).trim().toLowerCase(), v = l.slice(i + 1).trim()
    ;(headers[k] ||= []).push(v)
  }
  return { status: Number(m[1]), headers }
}

// A raw exchange on a fresh connection. headers: array of [name, value] (sent as given).
// body: Buffer/string sent after the head (unless sendBody is false or waitContinue and no 100).
// Returns {status, headers (lowercase -> [values]), h(name) -> first value, body, interim[],
// closed (server closed after the response)}.
export function raw(port, method, target, headers = [], body = null, o = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1')
    let buf = Buffer.alloc(0), done = false, head = null, interim = [], bodyStart = 0
    const timer = setTimeout(() => finish(new Error('timeout')), o.timeout || 15000)
    const hdrs = [...headers]
    if (!hdrs.some(([k]) => k.toLowerCase() === 'host')) hdrs.unshift(['Host', `127.0.0.1:${port}`])
    const b = body == null ? null : Buffer.isBuffer(body) ? body : Buffer.from(body)
    if (b && !o.chunked && !hdrs.some(([k]) => k.toLowerCase() === 'content-length'))
      hdrs.push(['Content-Length', String(b.length)])
    if (o.chunked) hdrs.push(['Transfer-Encoding', 'chunked'])
    let text = `${method} ${target} HTTP/1.1\r\n` + hdrs.map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n'
    const sendBody = () => {
      if (!b && !o.chunked) return
      if (o.chunked) {
        let s = Buffer.alloc(0)
        if (b && b.length) s = Buffer.concat([Buffer.from(b.length.toString(16) + '\r\n'), b, Buffer.from('\r\n')])
        const tr = (o.trailers || []).map(([k, v]) => `${k}: ${v}\r\n`).join('')
        sock.write(Buffer.concat([s, Buffer.from('0\r\n' + tr + '\r\n')]))
      } else if (o.partial != null) {
        sock.write(b.subarray(0, o.partial))
      } else {
        sock.write(b)
      }
    }
    let sentBody = false
    sock.on('connect', () => {
      sock.write(text)
      if (!o.waitContinue) { sentBody = true; sendBody() }
    })
    const finish = (err) => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      if (err) return reject(err)
      const r = { ...head, interim, body: buf.subarray(bodyStart), closed: o._closed || false }
      r.h = (n) => (r.headers[n.toLowerCase()] || [])[0]
      resolve(r)
    }
    const tryParse = () => {
      for (;;) {
        if (!head) {
          const i = buf.indexOf('\r\n\r\n')
          if (i < 0) return
          const ph = parseHead(buf.subarray(0, i).toString('latin1'))
          if (ph.status >= 100 && ph.status < 200) {
            interim.push(ph.status)
            buf = buf.subarray(i + 4)
            if (ph.status === 100 && o.waitContinue && !sentBody) { sentBody = true; sendBody() }
            continue
          }
          head = ph
          bodyStart = i + 4
        }
        if (method === 'HEAD' || head.status === 204 || head.status === 304) {
          buf = buf.subarray(0, bodyStart)
          if (o.waitClose) return
          return finish()
        }
        const cl = head.headers['content-length']
        if (cl && buf.length - bodyStart >= Number(cl[0])) {
          if (o.waitClose) return
          return finish()
        }
        return
      }
    }
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); tryParse() })
    sock.on('end', () => { o._closed = true; if (head) finish(); else finish(new Error('closed before response')) })
    sock.on('error', (e) => { if (head) finish(); else finish(e) })
    if (o.onSocket) o.onSocket(sock)
  })
}

export const TR = ['Tus-Resumable', '1.0.0']
export const CT = ['Content-Type', 'application/offset+octet-stream']

export const b64 = (s) => Buffer.from(s).toString('base64')

export async function create(port, length, extra = [], base = '/files/') {
  const hs = [TR, ...extra]
  if (length != null) hs.push(['Upload-Length', String(length)])
  const r = await raw(port, 'POST', base, hs)
  if (r.status !== 201) throw new Error(`create: ${r.status} ${r.body}`)
  return r.h('location')
}

export async function patch(port, url, offset, data, extra = []) {
  return raw(port, 'PATCH', url, [TR, CT, ['Upload-Offset', String(offset)], ...extra], data)
}

export async function head(port, url, extra = []) {
  return raw(port, 'HEAD', url, [TR, ...extra])
}

export function infoHash(seed) {
  let s = `p2p-sharer-seed-v2\n${seed.fileName}\n${seed.length}\n${seed.pieceLength}\n${seed.hashAlgo}\n`
  for (const p of seed.pieces) s += p.checksum + '\n'
  return crypto.createHash('sha256').update(s).digest('hex')
}

// Checks the seed beside a finished file against its bytes.
export function checkSeed(filePath, expected) {
  const seed = JSON.parse(fs.readFileSync(filePath + '.seed', 'utf8'))
  const data = fs.readFileSync(filePath)
  if (!data.equals(expected)) throw new Error('data differs')
  if (seed.version !== 2 || seed.length !== data.length || seed.hashAlgo !== 'sha256')
    throw new Error('bad seed header ' + JSON.stringify(seed).slice(0, 200))
  const n = Math.ceil(data.length / seed.pieceLength)
  if (seed.pieces.length !== n) throw new Error('piece count')
  for (let i = 0; i < n; i++) {
    const c = crypto.createHash('sha256').update(data.subarray(i * seed.pieceLength, (i + 1) * seed.pieceLength)).digest('hex')
    if (seed.pieces[i].checksum !== c || seed.pieces[i].index !== i) throw new Error('piece ' + i)
  }
  if (infoHash(seed) !== seed.infoHash) throw new Error('infoHash')
  if (!fs.existsSync(filePath + '.ok')) throw new Error('.ok missing')
  return seed
}

export function assert(cond, msg) {
  if (!cond) throw new Error('assertion failed: ' + msg)
}
export function eq(a, b, msg) {
  if (a !== b) throw new Error(`${msg}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`)
}

export async function waitFor(fn, ms = 5000, what = 'condition') {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error('timed out waiting for ' + what)
    await sleep(50)
  }
}

// Runs named cases; each gets a fresh harness unless the case says otherwise.
export async function runCases(cases, only) {
  let failed = 0, ran = 0
  for (const [name, fn] of Object.entries(cases)) {
    if (only && !name.includes(only)) continue
    ran++
    const t0 = Date.now()
    try {
      await fn()
      console.log(`ok   ${name} (${Date.now() - t0} ms)`)
    } catch (e) {
      failed++
      console.log(`FAIL ${name}: ${e.stack || e}`)
    }
  }
  console.log(`${ran - failed}/${ran} passed`)
  if (ran === 0) { console.log('no cases ran'); return 1 }
  return failed ? 1 : 0
}
