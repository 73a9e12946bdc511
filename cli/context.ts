import { openDatabase, type OpenedDatabase } from '../db/open.js';
import { settings } from './config.js';

/** Opens the same database `npm start` uses (DATABASE_URL or the embedded one). */
export async function withDatabase<T>(fn: (db: OpenedDatabase) => Promise<T>): Promise<T> {
  const { databaseUrl, dataDir, pgSettings } = settings();
  const db = await openDatabase({ databaseUrl, dataDir, pgSettings, pool: 4 });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

export function fail(message: string): never {
  process.stderr.write(`forfait: ${message}\n`);
  process.exit(2);
}
