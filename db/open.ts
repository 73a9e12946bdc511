import path from 'node:path';
import { connect, type DbHandle } from './connection.js';
import { startEmbedded, type EmbeddedServer } from './embedded.js';
import { migrateToLatest } from './migrate.js';

export interface OpenedDatabase extends DbHandle {
  embedded?: EmbeddedServer;
  url: string;
}

export function dataDirFromEnv(): string {
  return path.resolve(process.env.FORFAIT_DATA_DIR ?? './var');
}

/**
 * FORFAIT_PG_SETTINGS: settings for the embedded PostgreSQL, e.g.
 * "shared_buffers=1GB,max_connections=300" (each passed as `-c name=value`).
 */
export function pgSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (env.FORFAIT_PG_SETTINGS ?? '').split(',')) {
    const m = /^\s*([a-z_.]+)\s*=\s*(.+?)\s*$/.exec(pair);
    if (m) out[m[1]!] = m[2]!;
    else if (pair.trim()) throw new Error(`FORFAIT_PG_SETTINGS: "${pair}" is not name=value`);
  }
  return out;
}

/**
 * DATABASE_URL when set, else the embedded PostgreSQL under FORFAIT_DATA_DIR;
 * migrated to the latest schema either way.
 */
export async function openDatabase(options: {
  databaseUrl?: string;
  dataDir: string;
  log?: (line: string) => void;
  pool?: number;
  migrate?: boolean;
}): Promise<OpenedDatabase> {
  let embedded: EmbeddedServer | undefined;
  let url = options.databaseUrl;
  if (!url) {
    embedded = await startEmbedded({ dataDir: options.dataDir, log: options.log, settings: pgSettingsFromEnv() });
    url = embedded.url;
  }
  const handle = connect(url, { max: options.pool ?? 20 });
  try {
    if (options.migrate !== false) await migrateToLatest(handle.db);
  } catch (err) {
    await handle.close();
    await embedded?.stop();
    throw err;
  }
  return {
    ...handle,
    embedded,
    url,
    async close() {
      await handle.close();
      await embedded?.stop();
    },
  };
}
