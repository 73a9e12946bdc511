import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Db } from '../../db/connection.js';
import { insertKey, splitKey } from './access.js';

export async function defaultReseller(db: Db): Promise<string> {
  const existing = await db.selectFrom('resellers').select('id').where('name', '=', 'default').executeTakeFirst();
  if (existing) return existing.id;
  const row = await db
    .insertInto('resellers')
    .values({ name: 'default' })
    .onConflict((oc) => oc.column('name').doNothing())
    .returning('id')
    .executeTakeFirst();
  return row?.id ?? (await db.selectFrom('resellers').select('id').where('name', '=', 'default').executeTakeFirstOrThrow()).id;
}

/**
 * First start with no key at all: a reseller key is created (or
 * FORFAIT_BOOTSTRAP_KEY is registered), printed once by the caller and written
 * to <dataDir>/bootstrap-key with mode 0600. A bootstrap key given in the
 * environment is registered whenever it is missing, so scripted setups can rely on it.
 */
export async function ensureBootstrapKey(
  db: Db,
  options: { dataDir: string; envKey?: string },
): Promise<{ created: boolean; key?: string; file?: string }> {
  const resellerId = await defaultReseller(db);
  const anyKey = await db.selectFrom('apiKeys').select('id').limit(1).executeTakeFirst();
  if (options.envKey) {
    const parts = splitKey(options.envKey);
    if (!parts) throw new Error('FORFAIT_BOOTSTRAP_KEY must look like ffk_<16 hex digits>_<secret of 20+ url-safe characters>');
    const known = await db.selectFrom('apiKeys').select('id').where('id', '=', parts.id).executeTakeFirst();
    if (known) return { created: false };
  } else if (anyKey) {
    return { created: false };
  }
  const { key } = await insertKey(db, {
    principal: 'reseller',
    name: 'bootstrap',
    resellerId,
    createdBy: 'bootstrap',
    fixedKey: options.envKey,
  });
  await mkdir(options.dataDir, { recursive: true });
  const file = path.join(options.dataDir, 'bootstrap-key');
  await writeFile(file, key + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
  return { created: true, key, file };
}
