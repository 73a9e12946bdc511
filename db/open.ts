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
    embedded = await startEmbedded({ dataDir: options.dataDir, log: options.log });
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
