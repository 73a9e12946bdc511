/**
 * Several real `forfait serve` processes on one embedded PostgreSQL of their
 * own (not the run's shared one: the servers table and the locks are theirs).
 * Shared by test/cluster/*.test.ts and `npm run bench -- cluster` (no vitest here).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { freePort, startEmbedded, type EmbeddedServer } from '../../db/embedded.js';
import { healthy, spawnServer, type ServerProcess } from '../support/server.js';
import { tariffHeader } from '../support/accounts.js';
import { uniqueName } from '../support/factory.js';
import { provision, type Provisioned, type UserSpec } from '../pbx/harness.js';

/** The tests' number, and a tariff where it costs 0.01 per second (0.60 a minute by the second, no fee). */
export const MOBILE = '+33612345678';
export const TARIFF = [tariffHeader, '33,France,mobile,0.60,0,1,1,false,,'].join('\n');

/** A tenant on TARIFF with `users`, provisioned through `base`. */
export function clusterTenant(base: string, resellerKey: string, tag: string, users: UserSpec[], tenant: Record<string, unknown> = {}): Promise<Provisioned> {
  return provision(base, resellerKey, { name: uniqueName(tag), tariffId: uniqueName('tariff'), tariffCsv: TARIFF, users, tenant });
}

export interface Node {
  port: number;
  base: string;
  server: ServerProcess;
}

export interface Cluster {
  url: string;
  resellerKey: string;
  nodes: (Node | undefined)[];
  /** Starts (or starts again, on its port) server `i`, up and healthy. */
  start(i: number): Promise<Node>;
  /** SIGKILL: no goodbye, its PostgreSQL session dies with its sockets. */
  kill(i: number): Promise<void>;
  /**
   * Stops PostgreSQL (a fast shutdown: every session ends) and starts it again
   * at the same address, `downMs` later: what a switchover looks like from
   * the servers when their DATABASE_URL follows the primary.
   */
  restartDatabase(downMs: number): Promise<void>;
  /** A query on the cluster's database. */
  sql: postgres.Sql;
  stop(): Promise<void>;
}

/** `count` servers in a temporary folder of their own (removed by `stop`). */
export async function startCluster(count: number, env: Record<string, string> = {}): Promise<Cluster> {
  const dir = await mkdtemp(path.join(tmpdir(), 'forfait-cluster-'));
  const database = (port?: number) =>
    startEmbedded({
      dataDir: path.join(dir, 'pg'),
      port,
      ephemeral: true,
      settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '200' },
    });
  let pg: EmbeddedServer = await database();
  const resellerKey = `ffk_${randomBytes(8).toString('hex')}_${randomBytes(24).toString('base64url')}`;
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  const nodes: (Node | undefined)[] = Array.from({ length: count }, () => undefined);
  const sql = postgres(pg.url, { max: 2, onnotice: () => undefined });

  async function start(i: number): Promise<Node> {
    const port = ports[i]!;
    // no scheduled jobs: they fire on the wall clock, so whether one met a test's database outage
    // depended on the minute the suite ran (test/hardening/closedSocket.test.ts tells that story)
    const server = spawnServer(
      path.join(dir, `server-${i}`),
      port,
      {
        DATABASE_URL: pg.url,
        FORFAIT_BOOTSTRAP_KEY: resellerKey,
        ...env,
      },
      ['--no-jobs'],
    );
    await healthy(port, 120_000, server).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${server.output()}`);
    });
    const node = { port, base: `http://127.0.0.1:${port}`, server };
    nodes[i] = node;
    return node;
  }

  // one after the other: the first migrates and registers the reseller key
  for (let i = 0; i < count; i++) await start(i);

  return {
    url: pg.url,
    resellerKey,
    nodes,
    start,
    async kill(i) {
      const node = nodes[i];
      if (!node) return;
      node.server.child.kill('SIGKILL');
      await node.server.exited;
      nodes[i] = undefined;
    },
    async restartDatabase(downMs) {
      const port = pg.port;
      await pg.stop();
      await new Promise((r) => setTimeout(r, downMs));
      pg = await database(port);
    },
    sql,
    async stop() {
      for (const node of nodes) {
        if (!node) continue;
        node.server.child.kill('SIGTERM');
        await node.server.exited;
      }
      await sql.end({ timeout: 5 });
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** GET /v1/cluster through `base`: the server id owning each tenant id. */
export async function owners(base: string, resellerKey: string): Promise<{ byTenant: Map<string, string>; servers: ClusterServer[] }> {
  const res = await fetch(`${base}/v1/cluster`, { headers: { authorization: `Bearer ${resellerKey}` } });
  if (res.status !== 200) throw new Error(`GET /v1/cluster: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { servers: ClusterServer[] };
  const byTenant = new Map<string, string>();
  for (const s of body.servers) for (const t of s.tenants) byTenant.set(t.id, s.id);
  return { byTenant, servers: body.servers };
}

export interface ClusterServer {
  id: string;
  address: string;
  alive: boolean;
  self: boolean;
  tenants: { id: string; name: string; since: string | null }[];
}
