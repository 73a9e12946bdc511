import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type DbHandle } from '../db/connection.js';
import { startEmbedded } from '../db/embedded.js';
import { migrateToLatest } from '../db/migrate.js';

/**
 * A fresh embedded PostgreSQL, migrated, with production durability settings
 * (fsync on): benchmarks measure what a real deployment would see.
 */
export async function freshDatabase(): Promise<DbHandle & { url: string; dataDir: string }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'forfait-bench-'));
  const server = await startEmbedded({ dataDir, ephemeral: true });
  const handle = connect(server.url, { max: 20 });
  await migrateToLatest(handle.db);
  return {
    ...handle,
    url: server.url,
    dataDir,
    async close() {
      await handle.close();
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The closing line every benchmark prints (SPEC §12). */
export function benchLine(name: string, value: number, unit: string, anchor: number): string {
  const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 3 : 1));
  return `BENCH ${name} value=${fmt(value)} unit=${unit} anchor=${fmt(anchor)} ratio=${(value / anchor).toFixed(3)}`;
}
