import { ConflictError, NotFoundError, ValidationError } from '../services/shared/errors.js';
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

/**
 * Ends an import command on an error the user can act on: every line error of a
 * ValidationError on stderr, then its message; a ConflictError or
 * NotFoundError by its message. Any other error is thrown on.
 */
export function failOnInputError(err: unknown): never {
  if (err instanceof ValidationError) {
    for (const d of err.details) {
      process.stderr.write(`line ${d.line ?? '?'}${d.field ? ` ${d.field}` : ''}: ${d.message}${d.value !== undefined ? ` (${JSON.stringify(d.value)})` : ''}\n`);
    }
    fail(err.message);
  }
  if (err instanceof ConflictError || err instanceof NotFoundError) fail(err.message);
  throw err;
}
