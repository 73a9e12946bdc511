/**
 * Users import benchmark: a sync import of 100,000 users into a directory of
 * 100,000 where 10% of the lines changed (names, numbers, identifiants), against
 * a raw COPY of the same file into an empty table in the same run.
 *
 *   npm run bench -- users-import
 *
 * The import is measured end to end as a client sees it: CSV parsing, validation
 * of every line (numbers included), the plan against the directory, the
 * snapshot for restore and the writes, in one transaction. The file is the
 * directory's own export with 10,000 lines edited, the usual workflow.
 * Each figure is the median of 3 runs (the directory is restored between runs);
 * the median time of each step of the import is printed too (ImportOptions.onStep).
 *
 * Last line: BENCH users-import value=<rows/s> unit=rows/s anchor=<COPY rows/s> ratio=<value/anchor>
 */
import { performance } from 'node:perf_hooks';
import { parseNumber } from '../engine/numbers.js';
import { createProductType, createTenant } from '../services/tenants/tenants.js';
import { defaultReseller } from '../services/access/bootstrap.js';
import { exportUsersCsv } from '../services/users/export.js';
import { importUsers } from '../services/users/import.js';
import { restoreImport } from '../services/users/restore.js';
import { benchLine, freshDatabase } from './support.js';
import { random } from '../test/fixtures/random.js';

const USERS = 100_000;
const CHANGED = USERS / 10;
const RUNS = 3;

const FIRST = ['Zoë', 'Jean', 'Marie', 'Éloïse', 'Karim', 'Anne-Sophie', 'Noé', 'Léa', 'François', 'Inès', 'Yann', 'Chloé'];
const LAST = ['Martin', 'Dubois', "O'Neill", 'Lefèvre', 'Nguyen', 'Garçon', 'Müller', 'Da Silva', 'Bernard', 'Roux'];

function mobile(rnd: () => number): string {
  // metropolitan FR mobiles in allocated ranges (checked with the parser the import uses;
  // 0693…, 0694… are Réunion's and Guyane's, not +33), written in several usual forms
  const metropolitan = (n: string) => {
    const parsed = parseNumber(n, 'FR');
    return parsed.ok && parsed.e164.startsWith('+33');
  };
  let body: string;
  let prefix: string;
  do {
    body = String(10_000_000 + Math.floor(rnd() * 89_999_999));
    prefix = rnd() < 0.7 ? '6' : '7';
  } while (!metropolitan(`0${prefix}${body}`));
  const forms = [`0${prefix}${body}`, `+33${prefix}${body}`, `0${prefix} ${body.slice(0, 2)} ${body.slice(2, 4)} ${body.slice(4, 6)} ${body.slice(6)}`];
  return forms[Math.floor(rnd() * forms.length)]!;
}

/** The initial directory file: 100,000 users, 0 to 4 numbers each, a few shared switchboard numbers. */
function initialCsv(rnd: () => number): string {
  const switchboards = ['01 44 55 66 77', '+33 4 72 00 00 00', '05 56 00 11 22', '03 20 12 34 56'];
  const lines: string[] = [];
  for (let i = 0; i < USERS; i++) {
    const name = `${FIRST[Math.floor(rnd() * FIRST.length)]} ${LAST[Math.floor(rnd() * LAST.length)]} ${i}`;
    const matricule = String(10_000_000_000_000 + i * 7);
    const identifiant = String(1_000_000 + i);
    const slots: string[] = Array.from({ length: 10 }, () => '');
    const count = Math.floor(rnd() * 5);
    for (let s = 0; s < count; s++) slots[s] = s === 0 && rnd() < 0.5 ? switchboards[Math.floor(rnd() * switchboards.length)]! : mobile(rnd);
    lines.push([/[",]/.test(name) ? `"${name.replaceAll('"', '""')}"` : name, matricule, identifiant, ...slots].join(','));
  }
  return lines.join('\r\n') + '\r\n';
}

/** The export with 10% of its lines edited: a new name, a new number, or a new identifiant. */
function editedCsv(exported: string, rnd: () => number): string {
  const lines = exported.split('\r\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const picked = new Set<number>();
  while (picked.size < CHANGED) picked.add(Math.floor(rnd() * lines.length));
  let k = 0;
  for (const i of picked) {
    const cells = lines[i]!.split(',');
    if (k % 3 === 0) cells[0] = `${cells[0]} (modifié)`;
    else if (k % 3 === 1) cells[4] = mobile(rnd);
    else cells[2] = String(5_000_000 + k); // identifiants 5xxxxxx are free
    lines[i] = cells.join(',');
    k++;
  }
  return lines.join('\r\n') + '\r\n';
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function main(): Promise<void> {
  const handle = await freshDatabase();
  try {
    const { db, sql } = handle;
    const rnd = random(20_261_122);
    await createProductType(db, { code: 'bench', name: 'Bench', maxUsers: 1_000_000, monthlyFeePerUser: '1.00' });
    const resellerId = await defaultReseller(db);
    const { tenant } = await createTenant(db, resellerId, { name: 'bench', productType: 'bench' }, 'bench');

    let t = performance.now();
    const first = await importUsers(db, tenant.id, initialCsv(rnd), { mode: 'append' });
    console.log(`initial append of ${first.created} users into an empty directory: ${(performance.now() - t).toFixed(0)} ms`);

    let exported = '';
    for await (const chunk of exportUsersCsv(db, tenant.id)) exported += chunk;
    const file = editedCsv(exported, rnd);
    console.log(`file: ${USERS} lines, ${(Buffer.byteLength(file) / 1e6).toFixed(1)} MB, ${CHANGED} lines changed`);

    // anchor: the same file COPYed into an empty table of 16 text columns
    const columns = Array.from({ length: 16 }, (_, i) => `c${i + 1} text`).join(', ');
    const copyMs: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      await sql.unsafe(`DROP TABLE IF EXISTS raw_users; CREATE TABLE raw_users (${columns})`);
      t = performance.now();
      const writable = await sql`COPY raw_users FROM STDIN (FORMAT csv)`.writable();
      await new Promise<void>((resolve, reject) => {
        writable.on('finish', resolve);
        writable.on('error', reject);
        writable.end(file);
      });
      copyMs.push(performance.now() - t);
    }
    const [{ n }] = (await sql`SELECT count(*)::int AS n FROM raw_users`) as unknown as [{ n: number }];
    if (n !== USERS) throw new Error(`COPY loaded ${n} rows, expected ${USERS}`);

    const syncMs: number[] = [];
    const steps = new Map<string, number[]>();
    let summary = '';
    for (let run = 0; run < RUNS; run++) {
      t = performance.now();
      const r = await importUsers(db, tenant.id, file, {
        mode: 'sync',
        onStep: (step, ms) => steps.set(step, [...(steps.get(step) ?? []), ms]),
      });
      syncMs.push(performance.now() - t);
      summary = `created ${r.created}, updated ${r.updated}, deleted ${r.deleted}, unchanged ${r.unchanged}`;
      if (r.updated !== CHANGED) throw new Error(`sync updated ${r.updated} users, expected ${CHANGED}`);
      const restoreStart = performance.now();
      await restoreImport(db, tenant.id, r.importId!, 'bench');
      if (run === 0) console.log(`restore of that import: ${(performance.now() - restoreStart).toFixed(0)} ms`);
    }
    const copy = median(copyMs);
    const sync = median(syncMs);
    console.log(`raw COPY of the file into an empty table: ${copyMs.map((x) => x.toFixed(0)).join(' / ')} ms (median ${copy.toFixed(0)} ms)`);
    console.log(`sync import (${summary}): ${syncMs.map((x) => x.toFixed(0)).join(' / ')} ms (median ${sync.toFixed(0)} ms)`);
    console.log(`steps of the sync import (median ms): ${[...steps].map(([step, ms]) => `${step} ${median(ms).toFixed(0)}`).join(', ')}`);
    console.log(`sync import takes ${(sync / copy).toFixed(2)}× the raw COPY (target: at most 5×)`);
    console.log(benchLine('users-import', Math.round((USERS * 1000) / sync), 'rows/s', Math.round((USERS * 1000) / copy)));
  } finally {
    await handle.close();
  }
}
