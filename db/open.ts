import { connect, type DbHandle } from './connection.js';
import { startEmbedded, type EmbeddedServer } from './embedded.js';
import { migrateToLatest } from './migrate.js';

export interface OpenedDatabase extends DbHandle {
  embedded?: EmbeddedServer;
  url: string;
}

/**
 * The PostgreSQL at `databaseUrl` when given, else the embedded one under
 * `dataDir` (started with `pgSettings`, each passed as `-c name=value`);
 * migrated to the latest schema either way.
 */
export async function openDatabase(options: {
  databaseUrl?: string;
  dataDir: string;
  pgSettings?: Record<string, string>;
  log?: (line: string) => void;
  pool?: number;
  migrate?: boolean;
  /** Run-time parameters every connection starts with. */
  settings?: Record<string, string>;
}): Promise<OpenedDatabase> {
  let embedded: EmbeddedServer | undefined;
  let url = options.databaseUrl;
  if (!url) {
    embedded = await startEmbedded({ dataDir: options.dataDir, log: options.log, settings: options.pgSettings });
    url = embedded.url;
  }
  const handle = connect(url, { max: options.pool ?? 20, settings: options.settings });
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
