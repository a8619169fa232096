// tus-js-client in Node.js (the TUS.md §4 recipe): node client.mjs FILE ENDPOINT URLSTORE
// [abortAfterBytes] [parallelUploads] [token]. Resumes across processes via FileUrlStorage.
// Prints "DONE url=<url> resumedFrom=<n>" (exit 0), "ABORTED sent=<n>" (exit 2), or errors (1).
import * as tus from 'tus-js-client'
import fs from 'node:fs'

const [file, endpoint, store, abortArg, parArg, token] = process.argv.slice(2)
const abortAfter = Number(abortArg || 0), parallel = Number(parArg || 1)
let startOffset = 0, aborting = false
const headers = token ? { Authorization: `Bearer ${token}` } : {}
const upload = new tus.Upload(fs.createReadStream(file), {
  endpoint, headers, retryDelays: [0, 500, 1000, 2000],
  chunkSize: Infinity,
  parallelUploads: parallel,
  metadata: { filename: file.split('/').pop(), filetype: 'application/octet-stream' },
  urlStorage: new tus.FileUrlStorage(store),
  storeFingerprintForResuming: true, removeFingerprintOnSuccess: true,
  onAfterResponse(req, res) {
    if (req.getMethod() === 'HEAD') startOffset = Number(res.getHeader('Upload-Offset') || 0)
  },
  onProgress(sent) {
    if (abortAfter > 0 && sent >= abortAfter && !aborting) {
      aborting = true
      upload.abort(false).then(() => { console.log(`ABORTED sent=${sent} url=${upload.url}`); process.exit(2) })
    }
  },
  onError(err) { console.error('ERROR ' + err.message); process.exit(1) },
  onSuccess() { console.log(`DONE url=${upload.url} resumedFrom=${startOffset}`) },
})
const prev = await upload.findPreviousUploads()
if (prev.length) upload.resumeFromPreviousUpload(prev[0])
upload.start()
