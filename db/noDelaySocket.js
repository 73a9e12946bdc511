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
  return new Promise((resolve, reject) => {
    const socket = o.path ? net.connect(o.path) : net.connect({ host, port, noDelay: true });
    socket.setNoDelay(true);
    // postgres.js's connect_timeout starts once the socket is handed over: this one covers the connect
    socket.setTimeout((o.connect_timeout ?? 30) * 1000, () => socket.destroy(new Error('connect timeout')));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
