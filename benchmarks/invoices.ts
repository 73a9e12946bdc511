/**
 * Invoices benchmark (issue 7): the October 2026 run for 1,000 tenants of 50
 * users each (20 CDRs per user, 1,000,000 CDRs in all), through the same verb as
 * POST /v1/invoices/run and the monthly job: per tenant one transaction that
 * freezes the licences and CDRs into invoice_items, computes the lines, takes the
 * next number and writes the invoice. Anchor: one raw
 * `SELECT tenant_id, class, count(*), sum(charged_seconds), sum(cost) … GROUP BY`
 * over the same CDRs of the same month (the arithmetic of every invoice in one
 * statement, nothing written), expressed as tenants per second.
 *
 *   npm run bench -- invoices        (TENANTS=200 for a shorter run)
 *
 * Last line: BENCH invoices value=<invoices/s> unit=invoices/s anchor=<tenants/s> ratio=<value/anchor>
 */
import { performance } from 'node:perf_hooks';
import { defaultReseller } from '../services/access/bootstrap.js';
import { testIssuer } from '../test/support/issuer.js';
import { runInvoices } from '../services/invoices/run.js';
import { benchLine, freshDatabase } from './support.js';

const TENANTS = Number(process.env.TENANTS ?? 1000);
const USERS = 50;
const CDRS_PER_USER = 20;

export async function main(): Promise<void> {
  const db = await freshDatabase();
  try {
    const resellerId = await defaultReseller(db.db);
    await db.sql`INSERT INTO tariffs (reseller_id, id) VALUES (${resellerId}, 'bench')`;
    await db.sql`
      INSERT INTO tenants (reseller_id, name, product_type, tariff_id, reference, timezone, free_numbers)
      SELECT ${resellerId}, 'Client ' || g, 'pro', 'bench', 'REF-' || g, 'Europe/Paris', '{112}' FROM generate_series(1, ${TENANTS}) g`;
    await db.sql`
      INSERT INTO users (tenant_id, full_name, matricule, identifiant, forfait_minutes, balance)
      SELECT t.id, 'User ' || u, lpad(u::text, 14, '0'), (2000000 + u)::text, 60, 50
        FROM tenants t CROSS JOIN generate_series(1, ${USERS}) u`;
    // the users were enabled before October
    await db.sql`UPDATE user_status_events SET at = '2026-09-01T00:00:00Z'`;
    // the monthly partitions these rows go to (migration 0050), as the batch writer would make them
    await db.sql`SELECT cdrs_ensure_month(m) FROM generate_series(timestamptz '2026-09-15Z', timestamptz '2027-03-15Z', interval '1 month') m`;
    await db.sql`
      INSERT INTO cdrs (tenant_id, call_id, user_id, identifiant, caller, callee, direction, started_at, answered_at, duration_seconds,
                        disposition, rate_id, destination, class, billable_seconds, forfait_seconds, charged_seconds, cost)
      SELECT u.tenant_id, 'inv-' || u.identifiant || '-' || k, u.id, u.identifiant, '+33140000000', '+33612345678', 'out',
             timestamptz '2026-10-01 08:00+02' + (k * 36 + u.identifiant::int % 36) * interval '1 hour',
             timestamptz '2026-10-01 08:00:05+02' + (k * 36 + u.identifiant::int % 36) * interval '1 hour',
             (k * 37) % 400, 'answered', 1,
             CASE k % 4 WHEN 0 THEN 'France fixe' WHEN 1 THEN 'France mobile' WHEN 2 THEN 'Royaume-Uni' ELSE 'Numéro spécial' END,
             CASE k % 4 WHEN 0 THEN 'fixed' WHEN 1 THEN 'mobile' WHEN 2 THEN 'international' ELSE 'special' END,
             (k * 37) % 400, 0, (k * 37) % 400, round(((k * 37) % 400) * 0.0021, 4)
        FROM users u CROSS JOIN generate_series(1, ${CDRS_PER_USER}) k`;
    await db.sql`VACUUM ANALYZE`;
    await db.sql`CHECKPOINT`;
    const cdrs = Number((await db.sql<{ n: string }[]>`SELECT count(*)::text AS n FROM cdrs`)[0]!.n);
    process.stdout.write(`${TENANTS} tenants × ${USERS} users, ${cdrs} CDRs in October 2026\n`);

    // anchor: every invoice's sums in one statement
    let anchorSeconds = Infinity;
    for (let i = 0; i < 2; i++) {
      const started = performance.now();
      await db.sql`
        SELECT tenant_id, class, count(*), sum(charged_seconds), sum(cost) FROM cdrs
         WHERE direction = 'out' AND billable_seconds > 0 AND started_at >= '2026-09-30T22:00:00Z' AND started_at < '2026-10-31T23:00:00Z'
         GROUP BY tenant_id, class`;
      anchorSeconds = Math.min(anchorSeconds, (performance.now() - started) / 1000);
    }
    const anchor = TENANTS / anchorSeconds;
    process.stdout.write(`anchor: raw GROUP BY ${anchorSeconds.toFixed(2)} s, ${anchor.toFixed(0)} tenants/s\n`);

    const now = new Date('2026-11-01T06:00:00Z');
    const started = performance.now();
    const result = await runInvoices(db.db, { resellerId }, '2026-10', { issuer: testIssuer, now, concurrency: 4 });
    const seconds = (performance.now() - started) / 1000;
    if (result.created.length !== TENANTS) throw new Error(`created ${result.created.length} invoices, expected ${TENANTS}: ${JSON.stringify(result.skipped.slice(0, 3))}`);
    const again = await runInvoices(db.db, { resellerId }, '2026-10', { issuer: testIssuer, now, concurrency: 4 });
    if (again.created.length !== 0) throw new Error('the second run created invoices');

    // exact, or no figure: numbers 1..N, each invoice's total = its licences + its CDRs rounded per line
    const [check] = await db.sql<{ n: number; last: number; bad: number; items: string }[]>`
      SELECT (SELECT count(DISTINCT number)::int FROM invoices) AS n,
             (SELECT last_number FROM invoice_sequences WHERE year = 2026) AS last,
             (SELECT count(*)::int FROM invoices i WHERE total_excl_vat <> (SELECT sum(amount) FROM invoice_lines l WHERE l.tenant_id = i.tenant_id AND l.invoice_id = i.id)) AS bad,
             (SELECT count(*)::text FROM invoice_items) AS items`;
    process.stdout.write(`run: ${seconds.toFixed(2)} s, ${result.created.length} invoices, ${check!.items} items frozen; numbers 1..${check!.last} (${check!.n} distinct); ${check!.bad} totals off their lines\n`);
    if (check!.n !== TENANTS || check!.last !== TENANTS || check!.bad !== 0) throw new Error('the run is not exact');
    process.stdout.write(benchLine('invoices', result.created.length / seconds, 'invoices/s', anchor) + '\n');
  } finally {
    await db.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
