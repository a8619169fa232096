// TUS 1.0.0 protocol suites against the harness: node suites.mjs <suite> [case-filter].
// Every header rule, status code and extension is its own case (issue 5 item 6).
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import {
  startHarness, raw, TR, CT, b64, create, patch, head, checkSeed, assert, eq, waitFor, sleep,
  runCases,
} from './lib.mjs'

async function withH(flags, fn) {
  const h = await startHarness({ flags })
  try {
    await fn(h)
  } finally {
    try { await h.stop() } finally { fs.rmSync(h.root, { recursive: true, force: true }) }
  }
}
const W = (fn, flags = {}) => () => withH(flags, fn)
const rnd = (n) => crypto.randomBytes(n)
const sha256 = (b) => crypto.createHash('sha256').update(b).digest()
const dig = (algo, b) => crypto.createHash(algo).update(b).digest('base64')
const id32 = () => crypto.randomBytes(16).toString('hex')

async function upload(h, data, meta = {}) {
  const md = Object.entries(meta).map(([k, v]) => `${k} ${b64(v)}`).join(',')
  const url = await create(h.port, data.length, md ? [['Upload-Metadata', md]] : [])
  if (data.length) {
    const r = await patch(h.port, url, 0, data)
    eq(r.status, 204, 'patch status')
    eq(r.h('upload-offset'), String(data.length), 'offset')
  }
  return url
}

const suites = {}

// ---------------------------------------------------------------------------------------------
suites.core = {
  'OPTIONS advertises version, extensions, checksum algorithms': W(async (h) => {
    const r = await raw(h.port, 'OPTIONS', '/files/')
    assert(r.status === 200 || r.status === 204, 'status ' + r.status)
    eq(r.h('tus-version'), '1.0.0', 'Tus-Version')
    const ext = r.h('tus-extension').split(',')
    for (const e of ['creation', 'creation-with-upload', 'creation-defer-length', 'termination',
      'concatenation', 'checksum', 'checksum-trailer', 'expiration'])
      assert(ext.includes(e), 'extension ' + e)
    eq(r.h('tus-checksum-algorithm'), 'sha1,md5,sha256', 'algorithms')
    eq(r.h('tus-max-size'), undefined, 'no Tus-Max-Size without a limit')
  }),
  'OPTIONS ignores a bad Tus-Resumable': W(async (h) => {
    const r = await raw(h.port, 'OPTIONS', '/files/', [['Tus-Resumable', '0.0.1']])
    eq(r.status, 200, 'status')
  }),
  'missing Tus-Resumable on POST is 412 with Tus-Version': W(async (h) => {
    const r = await raw(h.port, 'POST', '/files/', [['Upload-Length', '5']])
    eq(r.status, 412, 'status')
    eq(r.h('tus-version'), '1.0.0', 'Tus-Version')
    eq(fs.readdirSync(h.dir).filter((f) => f.endsWith('.info')).length, 0, 'nothing created')
  }),
  'unsupported Tus-Resumable is 412': W(async (h) => {
    const r = await raw(h.port, 'POST', '/files/', [['Tus-Resumable', '0.2.2'], ['Upload-Length', '5']])
    eq(r.status, 412, 'status')
    eq(r.h('tus-version'), '1.0.0', 'Tus-Version')
  }),
  'missing Tus-Resumable on HEAD is 412': W(async (h) => {
    const url = await create(h.port, 5)
    const r = await raw(h.port, 'HEAD', url)
    eq(r.status, 412, 'status')
  }),
  'every response carries Tus-Resumable': W(async (h) => {
    for (const r of [await raw(h.port, 'OPTIONS', '/files/'), await raw(h.port, 'HEAD', '/files/' + id32(), [TR]),
      await raw(h.port, 'POST', '/files/', [])])
      eq(r.h('tus-resumable'), '1.0.0', 'Tus-Resumable on ' + r.status)
  }),
  'HEAD of an unknown upload is 404 without Upload-Offset': W(async (h) => {
    const r = await head(h.port, '/files/' + id32())
    eq(r.status, 404, 'status')
    eq(r.h('upload-offset'), undefined, 'no offset')
  }),
  'HEAD returns offset, length, metadata, no-store': W(async (h) => {
    const md = `filename ${b64('a.txt')},flag`
    const url = await create(h.port, 10, [['Upload-Metadata', md]])
    const r = await head(h.port, url)
    eq(r.status, 200, 'status')
    eq(r.h('upload-offset'), '0', 'offset 0')
    eq(r.h('upload-length'), '10', 'length')
    eq(r.h('upload-metadata'), md, 'metadata echoed')
    eq(r.h('cache-control'), 'no-store', 'cache-control')
  }),
  'PATCH appends and returns the new offset': W(async (h) => {
    const data = rnd(1000)
    const url = await create(h.port, 1000)
    let r = await patch(h.port, url, 0, data.subarray(0, 300))
    eq(r.status, 204, 'first'); eq(r.h('upload-offset'), '300', 'offset 300')
    r = await patch(h.port, url, 300, data.subarray(300))
    eq(r.status, 204, 'second'); eq(r.h('upload-offset'), '1000', 'offset 1000')
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
    checkSeed(h.finished[0].path, data)
  }),
  'PATCH without Content-Type is 415': W(async (h) => {
    const url = await create(h.port, 5)
    const r = await raw(h.port, 'PATCH', url, [TR, ['Upload-Offset', '0']], 'hello')
    eq(r.status, 415, 'status')
  }),
  'PATCH with a wrong Content-Type is 415': W(async (h) => {
    const url = await create(h.port, 5)
    const r = await raw(h.port, 'PATCH', url, [TR, ['Upload-Offset', '0'], ['Content-Type', 'application/octet-stream']], 'hello')
    eq(r.status, 415, 'status')
    eq((await head(h.port, url)).h('upload-offset'), '0', 'unchanged')
  }),
  'PATCH without Upload-Offset is 400': W(async (h) => {
    const url = await create(h.port, 5)
    const r = await raw(h.port, 'PATCH', url, [TR, CT], 'hello')
    eq(r.status, 400, 'status')
  }),
  'PATCH with a mismatched offset is 409 and changes nothing': W(async (h) => {
    const url = await create(h.port, 10)
    eq((await patch(h.port, url, 0, 'hello')).status, 204, 'first')
    const r = await patch(h.port, url, 3, 'xxxxx')
    eq(r.status, 409, 'status')
    eq(r.h('upload-offset'), '5', '409 carries the offset')
    eq((await head(h.port, url)).h('upload-offset'), '5', 'unchanged')
  }),
  'PATCH of an unknown upload is 404': W(async (h) => {
    const r = await patch(h.port, '/files/' + id32(), 0, 'hello')
    eq(r.status, 404, 'status')
  }),
  'PATCH body beyond Upload-Length is 413 before reading': W(async (h) => {
    const url = await create(h.port, 4)
    const r = await patch(h.port, url, 0, 'hello')
    eq(r.status, 413, 'status')
    eq((await head(h.port, url)).h('upload-offset'), '0', 'nothing stored')
  }),
  'chunked PATCH overflowing the length keeps the length and answers 413': W(async (h) => {
    const url = await create(h.port, 4)
    const r = await raw(h.port, 'PATCH', url, [TR, CT, ['Upload-Offset', '0']], 'hello', { chunked: true })
    eq(r.status, 413, 'status')
    eq((await head(h.port, url)).h('upload-offset'), '4', 'kept up to the length')
  }),
  'PATCH on a complete upload with an empty body is 204': W(async (h) => {
    const url = await upload(h, Buffer.from('abc'))
    const r = await patch(h.port, url, 3, '')
    eq(r.status, 204, 'status')
    eq(r.h('upload-offset'), '3', 'offset')
    assert(r.h('p2p-info-hash'), 'finished headers')
  }),
  'X-HTTP-Method-Override turns a POST into a PATCH': W(async (h) => {
    const url = await create(h.port, 5)
    const r = await raw(h.port, 'POST', url, [TR, CT, ['Upload-Offset', '0'], ['X-HTTP-Method-Override', 'PATCH']], 'hello')
    eq(r.status, 204, 'status')
    eq(r.h('upload-offset'), '5', 'offset')
  }),
  'X-HTTP-Method-Override is honoured for any real method (GET -> DELETE)': W(async (h) => {
    const url = await create(h.port, 5)
    const r = await raw(h.port, 'GET', url, [TR, ['X-HTTP-Method-Override', 'DELETE']])
    eq(r.status, 204, 'status')
    eq((await head(h.port, url)).status, 404, 'deleted')
  }),
  'unsupported methods are 405 with Allow': W(async (h) => {
    const url = await create(h.port, 5)
    let r = await raw(h.port, 'GET', url, [TR])
    eq(r.status, 405, 'GET upload'); assert(r.h('allow').includes('PATCH'), 'Allow')
    r = await raw(h.port, 'PUT', '/files/', [TR, ['Content-Length', '0']])
    eq(r.status, 405, 'PUT collection'); assert(r.h('allow').includes('POST'), 'Allow')
  }),
  'Expect: 100-continue is answered after the headers validate': W(async (h) => {
    const url = await create(h.port, 5)
    const r = await raw(h.port, 'PATCH', url, [TR, CT, ['Upload-Offset', '0'], ['Expect', '100-continue']], 'hello', { waitContinue: true })
    eq(r.status, 204, 'status')
    assert(r.interim.includes(100), '100 sent')
  }),
  'Expect: 100-continue with a bad offset gets 409 and no 100': W(async (h) => {
    const url = await create(h.port, 5)
    const r = await raw(h.port, 'PATCH', url, [TR, CT, ['Upload-Offset', '2'], ['Expect', '100-continue']], 'hello', { waitContinue: true })
    eq(r.status, 409, 'status')
    eq(r.interim.length, 0, 'no interim response')
  }),
  'CORS: allow and expose lists': W(async (h) => {
    let r = await raw(h.port, 'OPTIONS', '/files/', [['Origin', 'http://app.example'], ['Access-Control-Request-Method', 'POST']])
    eq(r.h('access-control-allow-origin'), 'http://app.example', 'allow origin')
    for (const x of ['POST', 'PATCH', 'HEAD', 'DELETE']) assert(r.h('access-control-allow-methods').includes(x), 'method ' + x)
    for (const x of ['Upload-Offset', 'Upload-Length', 'Tus-Resumable', 'Upload-Metadata', 'Upload-Concat', 'Upload-Checksum', 'Authorization', 'X-HTTP-Method-Override'])
      assert(r.h('access-control-allow-headers').includes(x), 'allow header ' + x)
    eq(r.h('access-control-max-age'), '86400', 'max-age')
    r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1'], ['Origin', 'http://app.example']])
    eq(r.status, 201, 'created')
    for (const x of ['Location', 'Upload-Offset', 'Upload-Length', 'Tus-Resumable', 'P2P-Info-Hash', 'Upload-Expires'])
      assert(r.h('access-control-expose-headers').includes(x), 'expose ' + x)
    eq(r.h('vary'), 'Origin', 'vary')
  }),
  'a finished upload is seeded: file, .seed, .ok, P2P headers': W(async (h) => {
    const data = rnd(3 * 1024 * 1024 + 123)
    const url = await upload(h, data, { filename: 'big.bin' })
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
    const f = h.finished[0]
    eq(f.path, path.join(h.complete, 'big.bin'), 'placed by filename')
    const seed = checkSeed(f.path, data)
    eq(seed.pieces.length, 4, '1 MiB pieces')
    eq(seed.trackers[0], '127.0.0.1:35330', 'trackers from the node')
    const r = await head(h.port, url)
    eq(r.h('p2p-info-hash'), seed.infoHash, 'P2P-Info-Hash')
    eq(r.h('p2p-seed-url'), `http://127.0.0.1:${h.port}/v2/seed/${seed.infoHash}`, 'P2P-Seed-URL')
    eq(r.h('upload-offset'), String(data.length), 'offset == length')
    eq(fs.existsSync(path.join(h.dir, url.split('/').pop())), false, 'data left the upload dir')
  }),
  'Upload-Length 0 is complete at creation': W(async (h) => {
    const r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '0'], ['Upload-Metadata', `filename ${b64('empty.bin')}`]])
    eq(r.status, 201, 'status')
    eq(r.h('upload-offset'), '0', 'offset')
    assert(/^[0-9a-f]{64}$/.test(r.h('p2p-info-hash')), 'finished at once')
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
    const seed = checkSeed(h.finished[0].path, Buffer.alloc(0))
    eq(seed.pieces.length, 0, 'no pieces')
  }),
  'public URL option sets P2P-Seed-URL': () => withH({ 'public-url': 'http://10.1.2.3:35331/' }, async (h) => {
    const url = await upload(h, Buffer.from('x'))
    const r = await head(h.port, url)
    assert(r.h('p2p-seed-url').startsWith('http://10.1.2.3:35331/v2/seed/'), r.h('p2p-seed-url'))
  }),
  'keep-alive: several requests on one connection (tus-js-client style)': W(async (h) => {
    const url = await create(h.port, 4)
    const id = url.split('/').pop()
    const sock = net.connect(h.port, '127.0.0.1')
    let got = ''
    sock.on('data', (d) => { got += d })
    await new Promise((r) => sock.on('connect', r))
    sock.write(`HEAD ${url} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n\r\n` +
      `PATCH ${url} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 4\r\n\r\nabcd` +
      `HEAD ${url} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n\r\n`)
    await waitFor(() => (got.match(/HTTP\/1\.1/g) || []).length === 3, 5000, 'three responses')
    sock.destroy()
    assert(/204 No Content[\s\S]*Upload-Offset: 4/.test(got), 'pipelined PATCH')
    assert(got.lastIndexOf('Upload-Offset: 4') > got.indexOf('204'), 'last HEAD sees 4')
    assert(id.length === 32, 'id')
  }),
}

// ---------------------------------------------------------------------------------------------
suites.creation = {
  'POST without a length is 400': W(async (h) => {
    eq((await raw(h.port, 'POST', '/files/', [TR])).status, 400, 'status')
  }),
  'POST with both Upload-Length and Upload-Defer-Length is 400': W(async (h) => {
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '5'], ['Upload-Defer-Length', '1']])).status, 400, 'status')
  }),
  'Upload-Defer-Length other than 1 is 400': W(async (h) => {
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Defer-Length', '2']])).status, 400, 'status')
  }),
  'strict Upload-Length integers': W(async (h) => {
    for (const v of ['abc', '-1', '+5', '5.0', '0x10', '18446744073709551616', '9223372036854775808', '1 2', ''])
      eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', v]])).status, 400, 'Upload-Length ' + JSON.stringify(v))
  }),
  'strict Upload-Offset integers': W(async (h) => {
    const url = await create(h.port, 5)
    for (const v of ['abc', '-1', '+0', '0.0', '99999999999999999999', ''])
      eq((await raw(h.port, 'PATCH', url, [TR, CT, ['Upload-Offset', v]], 'h')).status, 400, 'Upload-Offset ' + JSON.stringify(v))
  }),
  'tus.max_size: 413 and Tus-Max-Size': () => withH({ 'max-size': 1000 }, async (h) => {
    eq((await raw(h.port, 'OPTIONS', '/files/')).h('tus-max-size'), '1000', 'advertised')
    const r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1001']])
    eq(r.status, 413, 'over the limit')
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1000']])).status, 201, 'at the limit')
  }),
  'tus.max_size applies to deferred lengths': () => withH({ 'max-size': 10 }, async (h) => {
    const r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Defer-Length', '1']])
    const url = r.h('location')
    eq((await patch(h.port, url, 0, 'x', [['Upload-Length', '11']])).status, 413, 'declared too big')
    eq((await patch(h.port, url, 0, rnd(11))).status, 413, 'body too big')
  }),
  'creation-with-upload: 201 with Upload-Offset': W(async (h) => {
    const r = await raw(h.port, 'POST', '/files/', [TR, CT, ['Upload-Length', '100']], 'hello')
    eq(r.status, 201, 'status')
    eq(r.h('upload-offset'), '5', 'offset')
    eq((await head(h.port, r.h('location'))).h('upload-offset'), '5', 'stored')
  }),
  'creation-with-upload: whole file finishes': W(async (h) => {
    const data = rnd(200000)
    const r = await raw(h.port, 'POST', '/files/', [TR, CT, ['Upload-Length', String(data.length)], ['Upload-Metadata', `filename ${b64('cwu.bin')}`], ['Expect', '100-continue']], data, { waitContinue: true })
    eq(r.status, 201, 'status')
    assert(r.interim.includes(100), '100 continue')
    eq(r.h('upload-offset'), String(data.length), 'offset')
    assert(r.h('p2p-info-hash'), 'finished headers on the 201')
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
    checkSeed(h.finished[0].path, data)
  }),
  'creation-with-upload: a body with the wrong Content-Type is 415': W(async (h) => {
    const r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '5'], ['Content-Type', 'text/plain']], 'hello')
    eq(r.status, 415, 'status')
  }),
  'creation-with-upload: a body longer than the length is 413': W(async (h) => {
    const r = await raw(h.port, 'POST', '/files/', [TR, CT, ['Upload-Length', '3']], 'hello')
    eq(r.status, 413, 'status')
  }),
  'creation-defer-length: declare the length on a PATCH': W(async (h) => {
    const r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Defer-Length', '1']])
    eq(r.status, 201, 'created')
    const url = r.h('location')
    let hd = await head(h.port, url)
    eq(hd.h('upload-defer-length'), '1', 'deferred')
    eq(hd.h('upload-length'), undefined, 'no length yet')
    const data = rnd(2500000)
    eq((await patch(h.port, url, 0, data.subarray(0, 1000000))).status, 204, 'first chunk, length unknown')
    eq((await patch(h.port, url, 1000000, data.subarray(1000000, 1500000), [['Upload-Length', String(data.length)]])).status, 204, 'declared')
    hd = await head(h.port, url)
    eq(hd.h('upload-length'), String(data.length), 'length now known')
    eq(hd.h('upload-defer-length'), undefined, 'no longer deferred')
    eq((await patch(h.port, url, 1500000, 'x', [['Upload-Length', '5']])).status, 400, 'length cannot change')
    eq((await patch(h.port, url, 1500000, data.subarray(1500000))).status, 204, 'rest')
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
    checkSeed(h.finished[0].path, data)
  }),
  'Upload-Length on a PATCH below the offset is 400': W(async (h) => {
    const url = (await raw(h.port, 'POST', '/files/', [TR, ['Upload-Defer-Length', '1']])).h('location')
    eq((await patch(h.port, url, 0, 'hello')).status, 204, 'data')
    eq((await patch(h.port, url, 5, '', [['Upload-Length', '3']])).status, 400, 'below offset')
  }),
  'invalid base64 metadata is 400': W(async (h) => {
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1'], ['Upload-Metadata', 'filename abc']])).status, 400, 'status')
  }),
  'duplicate metadata keys are 400': W(async (h) => {
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1'], ['Upload-Metadata', `a ${b64('x')},a ${b64('y')}`]])).status, 400, 'status')
  }),
  'filename metadata is sanitized': W(async (h) => {
    await upload(h, Buffer.from('pw'), { filename: '../../etc/passwd' })
    await upload(h, Buffer.from('cr'), { filename: 'a\r\nb.txt' })
    await upload(h, Buffer.from('dot'), { filename: '.hidden' })
    await waitFor(() => h.finished.length === 3, 5000, 'finish')
    const names = h.finished.map((f) => path.basename(f.path))
    eq(names[0], 'passwd', 'last path component')
    eq(names[1], 'a__b.txt', 'control characters replaced')
    eq(names[2], 'hidden', 'leading dot stripped')
    for (const f of h.finished) eq(path.dirname(f.path), h.complete, 'inside complete_dir')
  }),
  'never overwrites: same filename gets a suffix': W(async (h) => {
    fs.mkdirSync(h.complete, { recursive: true })
    fs.writeFileSync(path.join(h.complete, 'same.txt'), 'precious')
    await upload(h, Buffer.from('one'), { filename: 'same.txt' })
    await upload(h, Buffer.from('two'), { filename: 'same.txt' })
    await waitFor(() => h.finished.length === 2, 5000, 'finish')
    eq(fs.readFileSync(path.join(h.complete, 'same.txt'), 'utf8'), 'precious', 'untouched')
    eq(path.basename(h.finished[0].path), 'same-1.txt', 'first suffix')
    eq(path.basename(h.finished[1].path), 'same-2.txt', 'second suffix')
    checkSeed(h.finished[1].path, Buffer.from('two'))
  }),
  'no filename metadata: named after the upload id': W(async (h) => {
    const url = await upload(h, Buffer.from('anon'))
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
    eq(path.basename(h.finished[0].path), url.split('/').pop(), 'id as name')
  }),
  'a rejected PATCH does not declare a deferred length': W(async (h) => {
    const url = (await raw(h.port, 'POST', '/files/', [TR, ['Upload-Defer-Length', '1']])).h('location')
    eq((await patch(h.port, url, 0, 'hello', [['Upload-Length', '3']])).status, 413, 'body longer than the declared length')
    let hd = await head(h.port, url)
    eq(hd.h('upload-defer-length'), '1', 'still deferred')
    eq(hd.h('upload-length'), undefined, 'no length')
    eq((await patch(h.port, url, 0, 'hello', [['Upload-Length', '5']])).status, 204, 'a valid declaration')
    hd = await head(h.port, url)
    eq(hd.h('upload-length'), '5', 'declared')
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
  }),
  'names the node reads as markers (.ok, .seed, .bitfield) are renamed': W(async (h) => {
    await upload(h, Buffer.from('a'), { filename: 'x.ok' })
    await upload(h, Buffer.from('b'), { filename: 'y.seed' })
    await upload(h, Buffer.from('c'), { filename: 'z.bitfield' })
    await waitFor(() => h.finished.length === 3, 5000, 'finish')
    eq(h.finished.map((f) => path.basename(f.path)).join(' '), 'x_ok y_seed z_bitfield', 'names')
    for (const n of ['x.ok', 'y.seed', 'z.bitfield']) assert(!fs.existsSync(path.join(h.complete, n)), n + ' not created')
  }),
  'over-long Upload-Metadata is 400': W(async (h) => {
    const md = `filename ${b64('a'.repeat(13000))}`
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1'], ['Upload-Metadata', md]])).status, 400, 'status')
  }),
  'metadata memory budget: 503 when full': () => withH({ 'meta-budget': 40000 }, async (h) => {
    const md = `filename ${b64('a'.repeat(12000))}`
    for (let i = 0; i < 2; i++)
      eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1'], ['Upload-Metadata', md]])).status, 201, 'within budget ' + i)
    const r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1'], ['Upload-Metadata', md]])
    eq(r.status, 503, 'over budget')
    eq(r.h('retry-after'), '1', 'Retry-After')
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1']])).status, 201, 'no metadata still fits')
  }),
  'Location is usable and unique': W(async (h) => {
    const a = await create(h.port, 1), b = await create(h.port, 1)
    assert(/^\/files\/[0-9a-f]{32}$/.test(a), 'relative Location ' + a)
    assert(a !== b, 'unique')
  }),
  'termination: DELETE is 204, then 404': W(async (h) => {
    const url = await create(h.port, 10)
    eq((await patch(h.port, url, 0, 'hello')).status, 204, 'data')
    const r = await raw(h.port, 'DELETE', url, [TR])
    eq(r.status, 204, 'delete')
    eq((await head(h.port, url)).status, 404, 'HEAD after')
    eq((await patch(h.port, url, 5, 'x')).status, 404, 'PATCH after')
    eq(fs.readdirSync(h.dir).filter((f) => f.startsWith(url.split('/').pop())).length, 0, 'files removed')
  }),
  'termination of a finished upload keeps the swarm file': W(async (h) => {
    const url = await upload(h, Buffer.from('keep'), { filename: 'keep.txt' })
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
    eq((await raw(h.port, 'DELETE', url, [TR])).status, 204, 'delete')
    assert(fs.existsSync(path.join(h.complete, 'keep.txt')), 'file kept')
  }),
  'instant upload: known sha256 completes at once': W(async (h) => {
    const data = rnd(300000)
    await upload(h, data, { filename: 'orig.bin' })
    await waitFor(() => fs.existsSync(path.join(h.dir, 'sha256.idx')) &&
      fs.readFileSync(path.join(h.dir, 'sha256.idx'), 'utf8').includes(sha256(data).toString('hex')), 5000, 'digest')
    const md = `filename ${b64('copy.bin')},sha256 ${sha256(data).toString('base64')}`
    const r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', String(data.length)], ['Upload-Metadata', md]])
    eq(r.status, 201, 'created')
    eq(r.h('upload-offset'), String(data.length), 'complete at once')
    eq(r.h('p2p-info-hash'), h.finished[0].infoHash, 'same file')
    const hd = await head(h.port, r.h('location'))
    eq(hd.h('upload-offset'), String(data.length), 'HEAD offset')
    eq(hd.h('p2p-info-hash'), h.finished[0].infoHash, 'HEAD info hash')
    // wrong length or unknown digest: an ordinary upload
    const r2 = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', String(data.length + 1)], ['Upload-Metadata', md]])
    eq(r2.h('upload-offset'), '0', 'other length is not instant')
    const r3 = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '10'], ['Upload-Metadata', `sha256 ${sha256(Buffer.from('zz')).toString('base64')}`]])
    eq(r3.h('upload-offset'), '0', 'unknown digest is not instant')
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '10'], ['Upload-Metadata', `sha256 ${b64('short')}`]])).status, 400, 'bad digest length')
  }),
}

// ---------------------------------------------------------------------------------------------
suites.concat = {
  'partial + final (relative and absolute URLs)': W(async (h) => {
    const a = rnd(700000), b = rnd(500000)
    const pa = await create(h.port, a.length, [['Upload-Concat', 'partial']])
    const pb = await create(h.port, b.length, [['Upload-Concat', 'partial']])
    eq((await head(h.port, pa)).h('upload-concat'), 'partial', 'partial echoed')
    eq((await patch(h.port, pb, 0, b)).status, 204, 'b')
    eq((await patch(h.port, pa, 0, a)).status, 204, 'a')
    await sleep(100)
    eq(h.finished.length, 0, 'partials are not files of their own')
    const concat = `final;${pa} http://127.0.0.1:${h.port}${pb}`
    const r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Concat', concat], ['Upload-Metadata', `filename ${b64('joined.bin')}`]])
    eq(r.status, 201, 'final created')
    const hd = await head(h.port, r.h('location'))
    eq(hd.h('upload-length'), String(a.length + b.length), 'length is the sum')
    eq(hd.h('upload-offset'), String(a.length + b.length), 'offset == length')
    eq(hd.h('upload-concat'), concat, 'Upload-Concat echoed')
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
    checkSeed(h.finished[0].path, Buffer.concat([a, b]))
    eq(path.basename(h.finished[0].path), 'joined.bin', 'final metadata used')
  }),
  'a partial may be used twice': W(async (h) => {
    const p = await create(h.port, 3, [['Upload-Concat', 'partial']])
    eq((await patch(h.port, p, 0, 'abc')).status, 204, 'data')
    const r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Concat', `final;${p} ${p}`]])
    eq(r.status, 201, 'final')
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
    checkSeed(h.finished[0].path, Buffer.from('abcabc'))
  }),
  'final with an unfinished partial is 400': W(async (h) => {
    const p = await create(h.port, 10, [['Upload-Concat', 'partial']])
    eq((await patch(h.port, p, 0, 'abc')).status, 204, 'some data')
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Concat', `final;${p}`]])).status, 400, 'status')
  }),
  'final with an unknown or non-partial upload is 400': W(async (h) => {
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Concat', `final;/files/${id32()}`]])).status, 400, 'unknown')
    const u = await upload(h, Buffer.from('abc'))
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Concat', `final;${u}`]])).status, 400, 'not partial')
  }),
  'malformed concat lists are 400': W(async (h) => {
    for (const v of ['final;', 'final', 'partial;x', 'final;/files/../x', 'final;/other/' + id32(), 'final;/files/%2f' + id32().slice(3), 'bogus'])
      eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Concat', v], ['Upload-Length', '1']])).status, 400, v)
  }),
  'a final URL with a non-ASCII or odd host is 400 (never echoed)': W(async (h) => {
    const p = await create(h.port, 1, [['Upload-Concat', 'partial']])
    eq((await patch(h.port, p, 0, 'a')).status, 204, 'partial')
    for (const host of ['h\u00e9st', 'a"b', 'x<y>', 'u@h', '%0d%0a'])
      eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Concat', `final;http://${host}${p}`]])).status, 400, host)
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Concat', `final;http://127.0.0.1:${h.port}${p}`]])).status, 201, 'a plain host works')
  }),
  'final with Upload-Length is 400, with a body 403': W(async (h) => {
    const p = await create(h.port, 1, [['Upload-Concat', 'partial']])
    await patch(h.port, p, 0, 'a')
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Concat', `final;${p}`], ['Upload-Length', '1']])).status, 400, 'length')
    eq((await raw(h.port, 'POST', '/files/', [TR, CT, ['Upload-Concat', `final;${p}`]], 'x')).status, 403, 'body')
  }),
  'PATCH on a final upload is 403': W(async (h) => {
    const p = await create(h.port, 1, [['Upload-Concat', 'partial']])
    await patch(h.port, p, 0, 'a')
    const f = (await raw(h.port, 'POST', '/files/', [TR, ['Upload-Concat', `final;${p}`]])).h('location')
    eq((await patch(h.port, f, 1, '')).status, 403, 'status')
  }),
  'deferred partials work': W(async (h) => {
    const p = (await raw(h.port, 'POST', '/files/', [TR, ['Upload-Defer-Length', '1'], ['Upload-Concat', 'partial']])).h('location')
    eq((await patch(h.port, p, 0, 'xyz', [['Upload-Length', '3']])).status, 204, 'data')
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Concat', `final;${p}`]])).status, 201, 'final')
  }),
}

// ---------------------------------------------------------------------------------------------
suites.checksum = {
  'sha1, md5 and sha256 checksums that match are accepted': W(async (h) => {
    const url = await create(h.port, 33)
    let off = 0
    for (const algo of ['sha1', 'md5', 'sha256']) {
      const chunk = Buffer.from('hello world')
      const r = await patch(h.port, url, off, chunk, [['Upload-Checksum', `${algo} ${dig(algo, chunk)}`]])
      eq(r.status, 204, algo)
      off += chunk.length
      eq(r.h('upload-offset'), String(off), algo + ' offset')
    }
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
    checkSeed(h.finished[0].path, Buffer.from('hello world'.repeat(3)))
  }),
  'a mismatch is 460 and the chunk is discarded': W(async (h) => {
    const url = await create(h.port, 11)
    const r = await patch(h.port, url, 0, 'hello world', [['Upload-Checksum', `sha1 ${dig('sha1', 'HELLO WORLD')}`]])
    eq(r.status, 460, 'status')
    eq((await head(h.port, url)).h('upload-offset'), '0', 'offset unchanged')
    eq(fs.statSync(path.join(h.dir, url.split('/').pop())).size, 0, 'nothing on disk')
  }),
  'an unsupported algorithm is 400': W(async (h) => {
    const url = await create(h.port, 11)
    eq((await patch(h.port, url, 0, 'hello world', [['Upload-Checksum', 'crc32 AAAAAA==']])).status, 400, 'status')
  }),
  'a malformed checksum is 400': W(async (h) => {
    const url = await create(h.port, 11)
    for (const v of ['sha1', 'sha1 !!!', 'sha1 AAAA', 'sha1  ' + dig('sha1', 'x')])
      eq((await patch(h.port, url, 0, 'hello world', [['Upload-Checksum', v]])).status, 400, v)
  }),
  'checksum-trailer: a matching trailer commits': W(async (h) => {
    const url = await create(h.port, 11)
    const r = await raw(h.port, 'PATCH', url, [TR, CT, ['Upload-Offset', '0'], ['Trailer', 'Upload-Checksum']], 'hello world',
      { chunked: true, trailers: [['Upload-Checksum', `sha256 ${dig('sha256', 'hello world')}`]] })
    eq(r.status, 204, 'status')
    eq(r.h('upload-offset'), '11', 'offset')
  }),
  'checksum-trailer: a wrong trailer is 460': W(async (h) => {
    const url = await create(h.port, 11)
    const r = await raw(h.port, 'PATCH', url, [TR, CT, ['Upload-Offset', '0'], ['Trailer', 'Upload-Checksum']], 'hello world',
      { chunked: true, trailers: [['Upload-Checksum', `md5 ${dig('md5', 'other')}`]] })
    eq(r.status, 460, 'status')
    eq((await head(h.port, url)).h('upload-offset'), '0', 'unchanged')
  }),
  'checksum-trailer: an announced but missing trailer is 400': W(async (h) => {
    const url = await create(h.port, 11)
    const r = await raw(h.port, 'PATCH', url, [TR, CT, ['Upload-Offset', '0'], ['Trailer', 'Upload-Checksum']], 'hello world', { chunked: true })
    eq(r.status, 400, 'status')
    eq((await head(h.port, url)).h('upload-offset'), '0', 'unchanged')
  }),
  'a client gone mid-way through a checksummed chunk: discarded, stage removed': W(async (h) => {
    const data = rnd(2000000)
    const url = await create(h.port, data.length)
    const id = url.split('/').pop()
    const sock = net.connect(h.port, '127.0.0.1')
    sock.on('error', () => {})
    await new Promise((r) => sock.on('connect', r))
    sock.write(`PATCH ${url} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
      `Content-Type: application/offset+octet-stream\r\nContent-Length: ${data.length}\r\n` +
      `Upload-Checksum: sha1 ${dig('sha1', data)}\r\n\r\n`)
    sock.write(data.subarray(0, 1000000))
    await waitFor(() => fs.existsSync(path.join(h.dir, id + '.stage')), 3000, 'chunk staged')
    sock.destroy()
    await waitFor(() => !fs.existsSync(path.join(h.dir, id + '.stage')), 3000, 'stage removed')
    eq((await head(h.port, url)).h('upload-offset'), '0', 'nothing committed')
    const r = await patch(h.port, url, 0, data, [['Upload-Checksum', `sha1 ${dig('sha1', data)}`]])
    eq(r.status, 204, 'whole chunk again')
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
    checkSeed(h.finished[0].path, data)
  }),
  'a checksummed creation-with-upload': W(async (h) => {
    const r = await raw(h.port, 'POST', '/files/', [TR, CT, ['Upload-Length', '11'], ['Upload-Checksum', `sha1 ${dig('sha1', 'hello world')}`]], 'hello world')
    eq(r.status, 201, 'status')
    eq(r.h('upload-offset'), '11', 'offset')
  }),
}

// ---------------------------------------------------------------------------------------------
suites.expiration = {
  'Upload-Expires on POST and PATCH; expired uploads are 410 and deleted': () => withH({ 'expiration-ms': 1500 }, async (h) => {
    const r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '10']])
    const exp = Date.parse(r.h('upload-expires'))
    assert(r.h('upload-expires').endsWith(' GMT') && exp > Date.now() - 1000, 'Upload-Expires on POST: ' + r.h('upload-expires'))
    const url = r.h('location')
    const p = await patch(h.port, url, 0, 'hello')
    assert(p.h('upload-expires'), 'Upload-Expires on PATCH')
    const done = await upload(h, Buffer.from('fin'))
    const idf = path.join(h.dir, url.split('/').pop())
    assert(fs.existsSync(idf), 'data present')
    await waitFor(async () => (await head(h.port, url)).status === 410, 6000, '410')
    assert(!fs.existsSync(idf), 'data deleted')
    eq((await patch(h.port, url, 5, 'x')).status, 410, 'PATCH 410')
    eq((await head(h.port, done)).status, 200, 'finished uploads do not expire')
  }),
  'tombstones are purged later (404)': () => withH({ 'expiration-ms': 1000 }, async (h) => {
    const url = await create(h.port, 10)
    await waitFor(async () => (await head(h.port, url)).status === 410, 5000, '410')
    await waitFor(async () => (await head(h.port, url)).status === 404, 5000, '404')
  }),
  'a PATCH running past the expiry time is not expired under it': () => withH({ 'expiration-ms': 1000 }, async (h) => {
    const url = await create(h.port, 100000)
    const st = await stalePatch(h.port, url, 0, 100000, 100)
    let sent = 100
    for (let i = 0; i < 8; i++) { await sleep(300); st.sock.write(rnd(100)); sent += 100 }
    await sleep(100)
    const r = await head(h.port, url) // pre-empts the PATCH: its bytes are kept
    eq(r.status, 200, 'still there after 2.5 s (expiry 1 s)')
    eq(r.h('upload-offset'), String(sent), 'every byte kept')
    st.sock.destroy()
  }),
  'finished upload records are forgotten after their retention; the file stays': () => withH({ 'finished-keep-ms': 1000 }, async (h) => {
    const url = await upload(h, Buffer.from('kept'), { filename: 'kept.txt' })
    eq((await head(h.port, url)).status, 200, 'known right after')
    const id = url.split('/').pop()
    await waitFor(async () => (await head(h.port, url)).status === 404, 6000, 'record purged')
    assert(!fs.existsSync(path.join(h.dir, id + '.info')), '.info removed')
    assert(fs.existsSync(path.join(h.complete, 'kept.txt.ok')), 'swarm file kept')
  }),
  'activity extends the expiry': () => withH({ 'expiration-ms': 2000 }, async (h) => {
    const url = await create(h.port, 100)
    for (let i = 0; i < 5; i++) {
      await sleep(700)
      eq((await patch(h.port, url, i, 'x')).status, 204, 'patch ' + i)
    }
    eq((await head(h.port, url)).status, 200, 'still alive after 3.5 s')
  }),
}

// ---------------------------------------------------------------------------------------------
// Opens a PATCH, sends `sent` bytes of a larger declared body, and leaves the socket open.
function stalePatch(port, url, offset, total, sent) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    const st = { sock, resp: '', closed: false }
    sock.on('data', (d) => { st.resp += d })
    sock.on('close', () => { st.closed = true })
    sock.on('error', () => {})
    sock.on('connect', () => {
      sock.write(`PATCH ${url} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: ${offset}\r\n` +
        `Content-Type: application/offset+octet-stream\r\nContent-Length: ${total}\r\n\r\n`)
      sock.write(rnd(sent), () => resolve(st))
    })
  })
}

suites.lock = {
  'interrupted PATCH keeps its bytes; resume completes': W(async (h) => {
    const data = rnd(2000000)
    const url = await create(h.port, data.length)
    const st = await stalePatch(h.port, url, 0, data.length, 0)
    st.sock.write(data.subarray(0, 777777))
    await sleep(300)
    st.sock.destroy()
    const off = Number(await waitFor(async () => {
      const r = await head(h.port, url); const o = Number(r.h('upload-offset'))
      return o === 777777 ? String(o) : null
    }, 5000, 'offset == bytes sent'))
    eq((await patch(h.port, url, off, data.subarray(off))).status, 204, 'resume')
    await waitFor(() => h.finished.length === 1, 5000, 'finish')
    checkSeed(h.finished[0].path, data)
  }),
  'a new HEAD pre-empts a stale PATCH quickly': W(async (h) => {
    const url = await create(h.port, 10000000)
    const st = await stalePatch(h.port, url, 0, 10000000, 300000)
    await sleep(300)
    const t0 = Date.now()
    const r = await head(h.port, url)
    const dt = Date.now() - t0
    eq(r.status, 200, 'HEAD')
    eq(r.h('upload-offset'), '300000', 'offset = stored bytes')
    assert(dt < 3000, 'pre-empted in ' + dt + ' ms')
    await waitFor(() => st.closed, 3000, 'stale connection closed')
    assert(/^HTTP\/1\.1 204/.test(st.resp), 'stale PATCH answered 204: ' + st.resp.slice(0, 40))
  }),
  'concurrent PATCH: the second pre-empts the first, then 409 on a stale offset': W(async (h) => {
    const url = await create(h.port, 1000000)
    const st = await stalePatch(h.port, url, 0, 1000000, 100000)
    await sleep(200)
    const r = await patch(h.port, url, 0, rnd(1000))
    eq(r.status, 409, 'second PATCH at 0 conflicts')
    eq(r.h('upload-offset'), '100000', 'with the stored offset')
    const r2 = await patch(h.port, url, 100000, rnd(1000))
    eq(r2.status, 204, 'continuing PATCH')
    st.sock.destroy()
  }),
  'DELETE pre-empts a running PATCH': W(async (h) => {
    const url = await create(h.port, 1000000)
    const st = await stalePatch(h.port, url, 0, 1000000, 1000)
    await sleep(100)
    eq((await raw(h.port, 'DELETE', url, [TR])).status, 204, 'deleted')
    eq((await head(h.port, url)).status, 404, 'gone')
    st.sock.destroy()
  }),
  'a finish that failed (complete_dir unusable) is retried by the next HEAD': W(async (h) => {
    const url = await create(h.port, 5, [['Upload-Metadata', `filename ${b64('retry.txt')}`]])
    fs.renameSync(h.complete, h.complete + '.away')
    fs.writeFileSync(h.complete, 'not a directory')
    const r = await patch(h.port, url, 0, 'hello')
    eq(r.status, 500, 'finish failed')
    eq(r.h('upload-offset'), '5', 'the bytes are stored')
    assert(fs.existsSync(path.join(h.dir, url.split('/').pop())), 'data still in tus.dir')
    eq((await head(h.port, url)).status, 500, 'HEAD retries and fails again (5xx: clients retry)')
    fs.unlinkSync(h.complete)
    fs.renameSync(h.complete + '.away', h.complete)
    const hd = await head(h.port, url)
    eq(hd.status, 200, 'HEAD after the fix')
    eq(hd.h('upload-offset'), '5', 'offset')
    assert(/^[0-9a-f]{64}$/.test(hd.h('p2p-info-hash') || ''), 'finished now: ' + hd.h('p2p-info-hash'))
    await waitFor(() => h.finished.length === 1, 5000, 'finish callback')
    checkSeed(path.join(h.complete, 'retry.txt'), Buffer.from('hello'))
  }),
  'slow body is written as it arrives (streaming, not buffered)': W(async (h) => {
    const url = await create(h.port, 4 * 1024 * 1024)
    const st = await stalePatch(h.port, url, 0, 4 * 1024 * 1024, 0)
    st.sock.write(rnd(2 * 1024 * 1024 + 1000))
    const f = path.join(h.dir, url.split('/').pop())
    await waitFor(() => fs.statSync(f).size >= 256 * 1024, 5000, 'bytes on disk before the body ends')
    st.sock.destroy()
  }),
  'too many bodies at once: 503 with Retry-After, then served again': W(async (h) => {
    const stale = []
    for (let i = 0; i < 64; i++) {
      const url = await create(h.port, 1000)
      stale.push(await stalePatch(h.port, url, 0, 1000, 1))
    }
    const url = await create(h.port, 5)
    const r = await patch(h.port, url, 0, 'hello')
    eq(r.status, 503, '65th body')
    eq(r.h('retry-after'), '1', 'Retry-After')
    for (const st of stale) st.sock.destroy()
    await waitFor(async () => (await patch(h.port, url, 0, 'hello')).status === 204, 5000, 'served after the others went away')
  }),
  'a client gone during creation-with-upload set-up frees its writer slot': W(async (h) => {
    for (let i = 0; i < 70; i++) {
      const sock = net.connect(h.port, '127.0.0.1')
      sock.on('error', () => {})
      await new Promise((r) => sock.on('connect', r))
      sock.write('POST /files/ HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 1000\r\n' +
        'Content-Type: application/offset+octet-stream\r\nContent-Length: 1000\r\n\r\n')
      sock.destroy()
    }
    const url = await create(h.port, 5)
    await waitFor(async () => (await patch(h.port, url, 0, 'hello')).status === 204, 5000, 'writer slots free again')
  }),
  'a burst of creation-with-upload requests cannot exceed the writer cap': W(async (h) => {
    const socks = await Promise.all(Array.from({ length: 70 }, () => new Promise((resolve) => {
      const sock = net.connect(h.port, '127.0.0.1')
      const st = { sock, resp: '' }
      sock.on('data', (d) => { st.resp += d })
      sock.on('error', () => {})
      sock.on('connect', () => resolve(st))
    })))
    for (const st of socks)
      st.sock.write('POST /files/ HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 1000\r\n' +
        'Content-Type: application/offset+octet-stream\r\nContent-Length: 1000\r\n\r\n')
    await waitFor(() => socks.filter((st) => st.resp).length >= 6, 5000, 'answers to the surplus')
    await sleep(300)
    const busy = socks.filter((st) => /^HTTP\/1\.1 503/.test(st.resp)).length
    eq(busy, 6, '64 bodies at most; the other 6 get 503')
    for (const st of socks) st.sock.destroy()
  }),
  'cap on unfinished uploads: 503, finished and deleted ones free a slot': () => withH({ 'max-unfinished': 3 }, async (h) => {
    const a = await create(h.port, 1)
    const b = await create(h.port, 1, [['Upload-Concat', 'partial']])
    const c = await create(h.port, 1)
    let r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1']])
    eq(r.status, 503, '4th unfinished upload')
    eq(r.h('retry-after'), '1', 'Retry-After')
    eq((await patch(h.port, a, 0, 'x')).status, 204, 'finish one')
    const d = await create(h.port, 1)
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1']])).status, 503, 'full again')
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '0']])).status, 201, 'an empty upload finishes at once: not counted')
    eq((await raw(h.port, 'DELETE', d, [TR])).status, 204, 'delete one')
    await create(h.port, 1)
    eq((await patch(h.port, b, 0, 'y')).status, 204, 'a complete partial still counts')
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1']])).status, 503, 'partials count')
    eq((await head(h.port, c)).status, 200, 'existing uploads unaffected')
  }),
  'many parallel uploads': W(async (h) => {
    const datas = Array.from({ length: 8 }, () => rnd(500000))
    await Promise.all(datas.map((d, i) => upload(h, d, { filename: `p${i}.bin` })))
    await waitFor(() => h.finished.length === 8, 10000, 'all finished')
    for (let i = 0; i < 8; i++) checkSeed(path.join(h.complete, `p${i}.bin`), datas[i])
  }),
}

// ---------------------------------------------------------------------------------------------
suites.malformed = {
  'ids with .., %2f, uppercase or bad length are 404': W(async (h) => {
    const good = (await create(h.port, 1)).split('/').pop()
    for (const p of ['/files/..', '/files/../files/' + good, '/files/%2e%2e', '/files/..%2f..%2fetc%2fpasswd',
      '/files/' + good.toUpperCase(), '/files/' + good + 'a', '/files/' + good.slice(1), '/files/' + good + '/x',
      '/files/' + good.slice(0, 29) + '%2f'])
      eq((await head(h.port, p)).status, 404, p)
  }),
  'oversize header block is 431 and the server keeps serving': W(async (h) => {
    const r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1'], ['X-Big', 'a'.repeat(70000)]])
    eq(r.status, 431, 'status')
    eq((await raw(h.port, 'OPTIONS', '/files/')).status, 200, 'still serving')
  }),
  'oversize metadata is rejected': W(async (h) => {
    const md = Array.from({ length: 70 }, (_, i) => `k${i} ${b64('v')}`).join(',')
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1'], ['Upload-Metadata', md]])).status, 400, 'too many pairs')
  }),
  'duplicate TUS headers are rejected': W(async (h) => {
    const url = await create(h.port, 5)
    eq((await raw(h.port, 'PATCH', url, [TR, CT, ['Upload-Offset', '0'], ['Upload-Offset', '0']], 'hello')).status, 400, 'Upload-Offset twice')
    eq((await raw(h.port, 'POST', '/files/', [TR, TR, ['Upload-Length', '1']])).status, 412, 'Tus-Resumable twice')
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '1'], ['Upload-Length', '2']])).status, 400, 'Upload-Length twice')
    eq((await head(h.port, url)).h('upload-offset'), '0', 'untouched')
  }),
  'bad X-HTTP-Method-Override is 400': W(async (h) => {
    eq((await raw(h.port, 'POST', '/files/', [TR, ['X-HTTP-Method-Override', 'FROB'], ['Upload-Length', '1']])).status, 400, 'status')
  }),
  'garbage on the wire gets 400 and the server survives': W(async (h) => {
    const sock = net.connect(h.port, '127.0.0.1')
    let got = ''
    sock.on('data', (d) => { got += d })
    sock.on('error', () => {})
    await new Promise((r) => sock.on('connect', r))
    sock.write('\x00\x01\x02 NOT HTTP\r\n\r\n')
    await waitFor(() => got.length > 0, 3000, 'reply')
    sock.destroy()
    assert(/^HTTP\/1\.1 400/.test(got), 'got ' + got.slice(0, 30))
    eq((await raw(h.port, 'OPTIONS', '/files/')).status, 200, 'still serving')
  }),
  'bad chunked encoding mid-PATCH keeps what was stored': W(async (h) => {
    const url = await create(h.port, 100)
    const sock = net.connect(h.port, '127.0.0.1')
    sock.on('error', () => {})
    await new Promise((r) => sock.on('connect', r))
    sock.write(`PATCH ${url} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZ\r\n`)
    await sleep(300)
    sock.destroy()
    await waitFor(async () => (await head(h.port, url)).h('upload-offset') === '5', 3000, 'offset 5')
  }),
  'Content-Type with parameters or junk is 415': W(async (h) => {
    const url = await create(h.port, 5)
    for (const v of ['application/offset+octet-stream; x=1', 'application/offset+octet-streamX', ''])
      eq((await raw(h.port, 'PATCH', url, [TR, ['Content-Type', v], ['Upload-Offset', '0']], 'hello')).status, 415, JSON.stringify(v))
  }),
}

// ---------------------------------------------------------------------------------------------
suites.restart = {
  'server kill mid-upload, restart, resume; pieces hash across the restart': async () => {
    const data = rnd(3 * 1024 * 1024 + 5)
    let h = await startHarness({})
    const root = h.root
    try {
      const url = await create(h.port, data.length, [['Upload-Metadata', `filename ${b64('resumed.bin')}`]])
      eq((await patch(h.port, url, 0, data.subarray(0, 1500000))).status, 204, 'part 1')
      const st = await stalePatch(h.port, url, 1500000, data.length - 1500000, 0)
      st.sock.write(data.subarray(1500000, 2000000))
      await sleep(300)
      await h.kill()
      st.sock.destroy()
      h = await startHarness({ root })
      const r = await head(h.port, url)
      eq(r.status, 200, 'known after restart')
      const off = Number(r.h('upload-offset'))
      assert(off >= 1500000 && off <= 2000000, 'offset kept: ' + off)
      eq((await patch(h.port, url, off, data.subarray(off))).status, 204, 'resume')
      await waitFor(() => h.finished.length === 1, 5000, 'finish')
      checkSeed(h.finished[0].path, data)
      // finished state and the digest index survive a restart too
      await waitFor(() => fs.existsSync(path.join(h.dir, 'sha256.idx')), 5000, 'digest')
      await h.stop()
      h = await startHarness({ root })
      const r2 = await head(h.port, url)
      eq(r2.h('p2p-info-hash'), JSON.parse(fs.readFileSync(path.join(h.complete, 'resumed.bin.seed'))).infoHash, 'finished after restart')
      const md = `sha256 ${sha256(data).toString('base64')}`
      const r3 = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', String(data.length)], ['Upload-Metadata', md]])
      eq(r3.h('upload-offset'), String(data.length), 'instant after restart')
    } finally {
      await h.stop().catch(() => {})
      fs.rmSync(root, { recursive: true, force: true })
    }
  },
  'SIGTERM during a PATCH keeps the bytes and exits cleanly': async () => {
    let h = await startHarness({})
    const root = h.root
    try {
      const url = await create(h.port, 5000000)
      const st = await stalePatch(h.port, url, 0, 5000000, 400000)
      await sleep(300)
      await h.stop()
      st.sock.destroy()
      h = await startHarness({ root })
      eq((await head(h.port, url)).h('upload-offset'), '400000', 'bytes kept')
    } finally {
      await h.stop().catch(() => {})
      fs.rmSync(root, { recursive: true, force: true })
    }
  },
  'a smaller max_size after a restart still bounds a deferred upload': async () => {
    let h = await startHarness({ flags: { 'max-size': 1000 } })
    const root = h.root
    try {
      const url = (await raw(h.port, 'POST', '/files/', [TR, ['Upload-Defer-Length', '1']])).h('location')
      eq((await patch(h.port, url, 0, rnd(100))).status, 204, '100 bytes')
      await h.stop()
      h = await startHarness({ root, flags: { 'max-size': 50 } })
      eq((await patch(h.port, url, 100, rnd(10))).status, 413, 'no room left under the new limit')
      eq((await patch(h.port, url, 100, rnd(10), [['Upload-Length', '110']])).status, 413, 'declared above the limit')
      eq((await head(h.port, url)).h('upload-offset'), '100', 'unchanged')
    } finally {
      await h.stop().catch(() => {})
      fs.rmSync(root, { recursive: true, force: true })
    }
  },
  'orphan data files (no usable .info) are removed at start': async () => {
    let h = await startHarness({})
    const root = h.root
    try {
      const url = await create(h.port, 10)
      const id = url.split('/').pop()
      await h.stop()
      const orphan = id32()
      fs.writeFileSync(path.join(h.dir, orphan), 'left by a crash between data file and .info')
      fs.writeFileSync(path.join(h.dir, id), 'x'.repeat(20)) // longer than its length: dropped
      h = await startHarness({ root })
      assert(!fs.existsSync(path.join(h.dir, orphan)), 'orphan removed')
      assert(!fs.existsSync(path.join(h.dir, id)), 'unusable data removed with its upload')
      eq((await head(h.port, url)).status, 404, 'dropped upload')
    } finally {
      await h.stop().catch(() => {})
      fs.rmSync(root, { recursive: true, force: true })
    }
  },
  'stray staging and temp files are cleaned at start': async () => {
    let h = await startHarness({})
    const root = h.root
    try {
      const url = await create(h.port, 10)
      const id = url.split('/').pop()
      await h.stop()
      fs.writeFileSync(path.join(h.dir, id + '.stage'), 'junk')
      fs.writeFileSync(path.join(h.dir, id + '.info.tmp-abc'), 'junk')
      fs.writeFileSync(path.join(h.dir, id32() + '.info'), '{not json')
      h = await startHarness({ root })
      assert(!fs.existsSync(path.join(h.dir, id + '.stage')), 'stage removed')
      eq((await head(h.port, url)).status, 200, 'upload still there')
    } finally {
      await h.stop().catch(() => {})
      fs.rmSync(root, { recursive: true, force: true })
    }
  },
}

// ---------------------------------------------------------------------------------------------
suites.hook = {
  'hook POST after finish, retried with backoff': async () => {
    const got = []
    const srv = http.createServer((req, res) => {
      let b = ''
      req.on('data', (d) => { b += d })
      req.on('end', () => {
        got.push(JSON.parse(b))
        res.statusCode = got.length === 1 ? 500 : 200
        res.end('{}')
      })
    })
    await new Promise((r) => srv.listen(0, '127.0.0.1', r))
    try {
      await withH({ hook: `http://127.0.0.1:${srv.address().port}/hook`, 'public-url': 'http://node.example:1' }, async (h) => {
        const url = await upload(h, Buffer.from('hooked'), { filename: 'h.txt' })
        await waitFor(() => got.length >= 2, 8000, 'two hook calls (retry)')
        const ih = (await head(h.port, url)).h('p2p-info-hash')
        eq(got[1].infoHash, ih, 'infoHash')
        eq(got[1].fileName, 'h.txt', 'fileName')
        eq(got[1].length, 6, 'length')
        eq(got[1].seedUrl, `http://node.example:1/v2/seed/${ih}`, 'seedUrl')
      })
    } finally {
      srv.close()
    }
  },
  'an unreachable hook never blocks the upload': () => withH({ hook: 'http://127.0.0.1:1/hook' }, async (h) => {
    const t0 = Date.now()
    await upload(h, Buffer.from('x'))
    assert(Date.now() - t0 < 2000, 'fast')
  }),
}

// ---------------------------------------------------------------------------------------------
suites.auth = {
  'auth_token: Bearer required on every TUS route except preflight': () => withH({ token: 's3cret' }, async (h) => {
    const A = ['Authorization', 'Bearer s3cret']
    let r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '5']])
    eq(r.status, 401, 'POST without token'); eq(r.h('www-authenticate'), 'Bearer', 'challenge')
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '5'], ['Authorization', 'Bearer nope']])).status, 401, 'wrong token')
    eq((await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '5'], ['Authorization', 'Basic s3cret']])).status, 401, 'wrong scheme')
    r = await raw(h.port, 'POST', '/files/', [TR, ['Upload-Length', '5'], A])
    eq(r.status, 201, 'with token')
    const url = r.h('location')
    eq((await head(h.port, url)).status, 401, 'HEAD')
    eq((await patch(h.port, url, 0, 'hello')).status, 401, 'PATCH')
    eq((await raw(h.port, 'DELETE', url, [TR])).status, 401, 'DELETE')
    eq((await patch(h.port, url, 0, 'hello', [A])).status, 204, 'PATCH with token')
    eq((await raw(h.port, 'OPTIONS', '/files/', [['Origin', 'http://x']])).status, 200, 'preflight exempt')
  }),
}

const [suite, only] = process.argv.slice(2)
if (!suites[suite]) {
  console.error('unknown suite ' + suite + '; one of ' + Object.keys(suites).join(' '))
  process.exit(2)
}
process.exit(await runCases(suites[suite], only))
