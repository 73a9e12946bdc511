/**
 * The verbs of issue 25 behind POST /v1/tariffs/{id}/simulate and
 * /quote: who may simulate what, the draft tariff read like an upload, and one
 * call's price.
 *
 * A reseller simulates any of its tariffs over any of its tenants (by default
 * the tenants rated with that tariff now); a tenant key or person with
 * tariffs:manage simulates the tariff it is rated with, over its own tenant
 * only. Another tenant's or reseller's id is a 404, like everywhere.
 */
import type { Db } from '../../db/connection.js';
import { digitsForLookup, formatMoney4, parseInstant, rateOrFree, tenantCountry, type Rate } from '../../engine/index.js';
import type { Principal } from '../access/access.js';
import { loadTenantContext, type CdrDeps } from '../cdrs/context.js';
import { NumberCache } from '../cdrs/normalize.js';
import { periodRange } from '../cdrs/view.js';
import { NotFoundError, ValidationError } from '../shared/errors.js';
import { getTenant } from '../tenants/tenants.js';
import { ratesOf, readTariffFile, TARIFF_ID_RE } from '../tariffs/tariffs.js';
import type { SimulationRequest } from './simulate.js';

export interface SimulateInput {
  from: string;
  to: string;
  tenantIds?: string[] | undefined;
  /** A draft tariff CSV (SPEC §6), read and checked like an upload, never stored. */
  tariffCsv?: string | undefined;
}

/** Whose jobs a principal sees. */
export function jobOwner(p: Principal): string {
  return p.kind === 'reseller' ? `reseller:${p.resellerId}` : `tenant:${p.tenantId}`;
}

/** 404 unless the principal may use tariff `id`: a reseller its own, a tenant the one it is rated with. */
export async function visibleTariff(db: Db, p: Principal, id: string): Promise<void> {
  if (!TARIFF_ID_RE.test(id)) throw new NotFoundError('tariff');
  const found =
    p.kind === 'reseller'
      ? await db.selectFrom('tariffs').select('id').where('id', '=', id).where('resellerId', '=', p.resellerId).executeTakeFirst()
      : await db.selectFrom('tenants').select('id').where('id', '=', p.tenantId).where('tariffId', '=', id).executeTakeFirst();
  if (found === undefined) throw new NotFoundError('tariff');
}

/** Checks a simulation request and resolves its rates and tenants; nothing runs yet. */
export async function prepareSimulation(db: Db, p: Principal, tariffId: string, input: SimulateInput): Promise<SimulationRequest & { draft: boolean }> {
  await visibleTariff(db, p, tariffId);
  periodRange(input, 'UTC'); // the period's words (a bad date, from after to) before anything else
  let tenantIds: string[];
  if (p.kind === 'reseller') {
    if (input.tenantIds !== undefined) {
      tenantIds = [];
      for (const id of new Set(input.tenantIds)) tenantIds.push((await getTenant(db, p.resellerId, id)).id);
    } else {
      const rows = await db.selectFrom('tenants').select('id').where('resellerId', '=', p.resellerId).where('tariffId', '=', tariffId).orderBy('name').orderBy('id').execute();
      tenantIds = rows.map((r) => r.id);
    }
  } else {
    if (input.tenantIds?.some((id) => id !== p.tenantId)) throw new NotFoundError('tenant');
    tenantIds = [p.tenantId];
  }
  const draft = input.tariffCsv !== undefined;
  const rates: Rate[] = draft ? (await readTariffFile(input.tariffCsv!)).rates : await ratesOf(db, tariffId);
  return { rates, from: input.from, to: input.to, tenantIds, draft };
}

export interface QuoteInput {
  callee: string;
  durationSeconds: number;
  /** When the call starts (ISO 8601; without an offset, UTC): which rates are valid. Default now. */
  at?: string | undefined;
  /** A reseller's: read the callee as this tenant's users dial it (its country, its free numbers). */
  tenantId?: string | undefined;
  /** Forfait seconds the caller has left (default 0: the whole call is charged). */
  forfaitSeconds?: number | undefined;
}

export interface Quote {
  tariffId: string;
  /** The callee as rated: E.164 or a short number's digits. */
  callee: string;
  at: string;
  /** The stored rate found (with its id). */
  rate: (Rate & { id: string }) | null;
  freeNumber: boolean;
  billableSeconds: number;
  forfaitSeconds: number;
  chargedSeconds: number;
  cost: string;
}

/**
 * One call's price under tariff `tariffId` by SPEC §4 (engine/rating.ts), as a
 * user with billing on would pay it. A callee no rate matches is a 400 naming
 * it. Nothing is written.
 */
export async function quoteCall(deps: CdrDeps, p: Principal, tariffId: string, input: QuoteInput, now: Date): Promise<Quote> {
  await visibleTariff(deps.db, p, tariffId);
  const tenantId = p.kind === 'tenant' ? p.tenantId : input.tenantId;
  if (p.kind === 'tenant' && input.tenantId !== undefined && input.tenantId !== p.tenantId) throw new NotFoundError('tenant');
  if (p.kind === 'reseller' && tenantId !== undefined) await getTenant(deps.db, p.resellerId, tenantId);
  const tenant = tenantId === undefined ? undefined : await loadTenantContext(deps, tenantId);
  const numbers = tenant?.numbers ?? new NumberCache(tenantCountry(''));
  const callee = numbers.parse(input.callee);
  if (callee === null) throw new ValidationError('not a phone number', [{ field: 'callee', value: input.callee, message: 'not a phone number' }]);
  const atMs = input.at === undefined ? now.getTime() : parseInstant(input.at);
  if (atMs === undefined) throw new ValidationError('invalid instant', [{ field: 'at', value: input.at ?? '', message: 'not an ISO 8601 date or date-time' }]);
  const index = await deps.tariffs.get(tariffId);
  const rate = index.lookup(digitsForLookup(callee), atMs);
  const free = tenant?.freeNumbers.has(callee) ?? false;
  if (rate === undefined && !free) {
    throw new ValidationError(`no rate of tariff ${tariffId} matches ${callee}`, [{ field: 'callee', value: input.callee, message: `no rate of tariff ${tariffId} matches ${callee}` }]);
  }
  const rated = rateOrFree({ durationSeconds: input.durationSeconds, answered: true, rate, remainingForfaitSeconds: input.forfaitSeconds ?? 0, billingEnabled: true, freeNumber: free });
  return {
    tariffId,
    callee,
    at: new Date(atMs).toISOString(),
    rate: rate === undefined ? null : { ...rate.rate, id: rate.rate.id ?? '' },
    freeNumber: free,
    billableSeconds: rated.billableSeconds,
    forfaitSeconds: rated.forfaitSeconds,
    chargedSeconds: rated.chargedSeconds,
    cost: formatMoney4(rated.cost),
  };
}
