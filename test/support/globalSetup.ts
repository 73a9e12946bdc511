import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { connect } from '../../db/connection.js';
import { startEmbedded, type EmbeddedServer } from '../../db/embedded.js';
import { migrateToLatest } from '../../db/migrate.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

/**
 * One real PostgreSQL for the whole run: the embedded one in a fresh folder, or,
 * with DATABASE_URL set, a fresh database created on that server.
 */
export default async function setup(project: TestProject) {
  let embedded: EmbeddedServer | undefined;
  let dir: string | undefined;
  let url: string;
  let dropDatabase: (() => Promise<void>) | undefined;
  if (process.env.DATABASE_URL) {
    const name = `forfait_test_${randomBytes(4).toString('hex')}`;
    const admin = postgres(process.env.DATABASE_URL, { max: 1, onnotice: () => undefined });
    await admin.unsafe(`CREATE DATABASE ${name}`);
    const u = new URL(process.env.DATABASE_URL);
    u.pathname = `/${name}`;
    url = u.toString();
    dropDatabase = async () => {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    };
  } else {
    dir = await mkdtemp(path.join(tmpdir(), 'forfait-test-'));
    // throw-away data: durability settings off make the suite faster
    embedded = await startEmbedded({ dataDir: dir, ephemeral: true, settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' } });
    url = embedded.url;
  }
  const handle = connect(url, { max: 1 });
  await migrateToLatest(handle.db);
  await handle.close();
  project.provide('databaseUrl', url);
  return async () => {
    await dropDatabase?.();
    await embedded?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  };
}
