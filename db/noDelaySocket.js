// Plain JavaScript (typed by noDelaySocket.d.ts) so that both db/connection.ts
// and the reservation commit worker, which Node loads without tsx, use it.
import net from 'node:net';

/** Connection attempts so far, per pool (its options object). */
const attempts = new WeakMap();

/**
 * postgres.js's own sockets keep Nagle's algorithm on: a small message sent
 * while an earlier one is unacknowledged (the 5-byte CopyDone after a COPY's
 * data, a query right after another) waits for PostgreSQL's delayed ACK, ~40 ms.
 * This connects the socket itself with TCP_NODELAY, for postgres.js's `socket`
 * option (postgres.js then speaks on it, TLS included).
 *
 * Several hosts (`postgres://a:5432,b:5432/forfait?target_session_attrs=read-write`,
 * a Patroni cluster: docs/operations.md): each connection attempt of a pool
 * goes to the host after the one its previous attempt went to, as postgres.js
 * does with its own sockets, so an attempt that found a standby (postgres.js
 * then drops it and connects again) reaches the next host.
 * @param {{ host: string[], port: number[], path?: string | false, connect_timeout?: number }} o
 * @returns {Promise<net.Socket>}
 */
export function noDelaySocket(o) {
  const i = attempts.get(o) ?? 0;
  attempts.set(o, i + 1);
  const host = o.host[i % Math.max(1, o.host.length)] ?? 'localhost';
  const port = o.port[i % Math.max(1, o.port.length)] ?? 5432;
  const socket = o.path ? net.connect(o.path) : net.connect({ host, port, noDelay: true });
  socket.setNoDelay(true);
  // Handed over at once, still connecting, as postgres.js's own sockets are: its
  // connect_timeout covers the connect, what it writes waits for it, and a
  // refused connect reaches it as the socket's 'error' and 'close', after which
  // it connects again. (A socket function that rejected left the pool's
  // connection neither open nor closed: during a PostgreSQL restart, the
  // commit worker's one connection waited some 10 s after PostgreSQL was back.)
  return Promise.resolve(socket);
}

/**
 * How long postgres.js waits before connecting again, by failed attempts in a
 * row, in seconds: 0.1, 0.2, 0.4, 0.8, then 1 at most. Its default grows to 10–20 s
 * after a few failures, so a PostgreSQL away for 3 s (a Patroni switchover, a
 * restart) kept Forfait failing for 10 s or more after it was back
 * (test/cluster/switchover.test.ts).
 * @param {number} retries
 * @returns {number}
 */
export function reconnectBackoff(retries) {
  return Math.min(0.1 * 2 ** retries, 1);
}
