import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientLike, connect } from '../../db/connection.js';
import { startEmbedded, type EmbeddedServer } from '../../db/embedded.js';

/**
 * What Forfait needs from a PostgreSQL cluster with a primary and standbys
 * (Patroni, docs/operations.md): a DATABASE_URL naming every member with
 * target_session_attrs=read-write reaches the writable one, for the pool, for
 * the account book's lock session, and again after the first host was tried.
 * The "standby" here is a real PostgreSQL whose sessions are read-only
 * (default_transaction_read_only=on), which is what postgres.js checks.
 */
let dir: string;
let readOnly: EmbeddedServer;
let writable: EmbeddedServer;
let url: string;

describe('a DATABASE_URL of several hosts, target_session_attrs=read-write', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'forfait-multihost-'));
    const settings = { fsync: 'off', synchronous_commit: 'off' };
    writable = await startEmbedded({ dataDir: path.join(dir, 'rw'), ephemeral: true, settings });
    readOnly = await startEmbedded({ dataDir: path.join(dir, 'ro'), ephemeral: true, settings });
    // one password for both, as the members of one cluster share their roles; then its sessions read-only
    const password = decodeURIComponent(new URL(writable.url).password);
    const admin = postgres(readOnly.url, { max: 1, onnotice: () => undefined });
    await admin.unsafe(`alter role postgres password '${password.replace(/'/g, "''")}'`);
    await admin`alter system set default_transaction_read_only = on`;
    await admin`select pg_reload_conf()`;
    await admin.end();
    url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${readOnly.port},127.0.0.1:${writable.port}/forfait?target_session_attrs=read-write`;
  }, 120_000);

  afterAll(async () => {
    await readOnly?.stop();
    await writable?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('every connection of the pool, and the lock session, is on the writable server', async () => {
    // the first host listed is up, and read-only: a client that took it would fail to write
    const direct = postgres(url.replace(`,127.0.0.1:${writable.port}`, '').replace('?target_session_attrs=read-write', ''), { max: 1, onnotice: () => undefined });
    expect((await direct`select current_setting('transaction_read_only') as ro`)[0]).toEqual({ ro: 'on' });
    await direct.end();
    const handle = connect(url, { max: 4 });
    try {
      const ports = await Promise.all(
        Array.from({ length: 4 }, () => handle.sql.begin(async (t) => (await t<{ port: number }[]>`select inet_server_port() as port, pg_sleep(0.05)`)[0]!.port)),
      );
      expect(new Set(ports)).toEqual(new Set([writable.port]));
      await handle.sql`create table if not exists written (n int)`;
      await handle.sql`insert into written values (1)`;
      const locks = clientLike(handle.sql, 'forfait-locks');
      const [s] = await locks<{ port: number; ro: string }[]>`select inet_server_port() as port, current_setting('transaction_read_only') as ro`;
      expect(s).toEqual({ port: writable.port, ro: 'off' });
      await locks.end();
    } finally {
      await handle.close();
    }
  });
});
