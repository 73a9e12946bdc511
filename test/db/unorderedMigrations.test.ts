import { describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../db/migrate.js';
import { scratchDatabase } from '../support/scratchDb.js';

/**
 * Migrations come in numbered blocks, one per piece of work: a database that
 * ran a later block first (0150 from one branch) still takes an earlier one
 * that landed after it (0110 from another), instead of refusing to start.
 */
const scratch = scratchDatabase('forfait_unordered');

describe('migrations applied out of their blocks’ order', () => {
  it('an earlier migration that was never run is run, the later ones are left as they are', async () => {
    const h = scratch.handle();
    await migrateToLatest(h.db);
    // as a database would be that had 0150 but not yet 0110
    await h.sql`ALTER TABLE sessions DROP COLUMN last_seen_at`;
    await h.sql`DELETE FROM kysely_migration WHERE name = '2026_12_03_0110_session_idle'`;
    const result = await migrateToLatest(h.db);
    expect(result.results?.map((r) => [r.migrationName, r.status])).toEqual([['2026_12_03_0110_session_idle', 'Success']]);
    const [column] = await h.sql`SELECT 1 FROM information_schema.columns WHERE table_name = 'sessions' AND column_name = 'last_seen_at'`;
    expect(column).toBeDefined();
  });
});
