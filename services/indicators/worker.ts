/**
 * The indicators' worker (issue #24): runs a checked request's statements on a
 * connection of its own and hands back the answer's bytes, so that neither the
 * 1.5 MB of a 10,000-point series nor the garbage of reading it touches the
 * thread that answers the PBX. On that thread, each such request used to cost
 * ~11 ms of CPU, most of it major collections of the main heap triggered by the
 * answer's buffers (benchmarks/RESULTS.md). The server's lane (api/routes/indicators.ts)
 * still bounds how many run at once.
 */
import { workerData } from 'node:worker_threads';
import postgres from 'postgres';
import { reconnectBackoff } from '../../db/noDelaySocket.js';
import { serveTasks } from '../shared/workerPool.js';
import { runIndicators, type IndicatorRequest } from './query.js';

export interface IndicatorWorkerData {
  /** db/connection.ts sameDatabase(): the server's database, one connection. */
  connection: postgres.Options<Record<string, never>>;
}

const { connection } = workerData as IndicatorWorkerData;
const sql = postgres({ ...connection, backoff: reconnectBackoff, onnotice: () => undefined });

serveTasks(
  {
    indicators: async (request: IndicatorRequest) => {
      const answer = await runIndicators(sql, request);
      // bytes of their own, moved to the server's thread (a Buffer may be a slice of a shared pool)
      const own = new Uint8Array(answer.byteLength);
      own.set(answer);
      return { result: own, transfer: [own.buffer] };
    },
  },
  workerData as { nice?: number },
);
