import { sql, type Selectable } from 'kysely';
import { rawSql, withTransaction, type Db, type Trx } from '../../db/connection.js';
import { copyIn, CopyBuffer, copyValue } from '../../db/copy.js';
import type { RateTable } from '../../db/schema.js';
import {
  buildTariffIndex,
  formatPrice,
  parsePrice,
  tariffCsvText,
  tariffFromCsv,
  type Rate,
  type TariffCsvOptions,
  type TariffCsvResult,
  type TariffIndex,
} from '../../engine/index.js';
import { readCsvRecords } from '../shared/csvRecords.js';
import { decodeCsv, type CsvReading } from '../shared/csvText.js';
import { NotFoundError, ValidationError } from '../shared/errors.js';
import type { Principal } from '../access/access.js';
import { LoadingCache } from '../shared/loadingCache.js';
import { recordAudit, type Actor } from '../audit/audit.js';

export const TARIFF_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A tariff CSV (SPEC §6) read: its rates, or every error of the file with its line. */
export async function parseTariffCsv(text: string, options: TariffCsvOptions = {}): Promise<TariffCsvResult> {
  const { body, delimiter } = tariffCsvText(text);
  return tariffFromCsv(await readCsvRecords(body, delimiter), delimiter, options);
}

/** A stored rate as the API shows it: the engine's Rate, always with its id. */
export type RateView = Rate & { id: string };

const price = (numeric: string) => formatPrice(parsePrice(numeric));

export async function ratesOf(db: Db | Trx, tariffId: string): Promise<RateView[]> {
  const rows = await db
    .selectFrom('rates')
    .selectAll()
    .where('tariffId', '=', tariffId)
    .orderBy('prefix')
    .orderBy('validFrom')
    .execute();
  return rows.map(rateView);
}

function rateView(r: Selectable<RateTable>): RateView {
  return {
    id: r.id,
    prefix: r.prefix,
    destination: r.destination,
    class: r.class,
    pricePerMinute: price(r.pricePerMinute),
    nextPricePerMinute: price(r.nextPricePerMinute),
    connectionFee: price(r.connectionFee),
    firstIncrement: r.firstIncrement,
    nextIncrement: r.nextIncrement,
    forfaitEligible: r.forfaitEligible,
    validFrom: r.validFrom.toISOString(),
  };
}

/**
 * A tariff file (SPEC §6) read and checked, nothing written: its rates, or a
 * ValidationError listing every line at fault. The upload and the what-if
 * simulation's draft tariff both read files here, with the same words.
 */
export async function readTariffFile(file: string | Uint8Array): Promise<{ rates: Rate[] } & CsvReading> {
  // the bytes as text, whatever a spreadsheet saved them as (a line error where it cannot be sure)
  const { text: csv, ...reading } = typeof file === 'string' ? { text: file, encoding: 'utf-8' as const, notes: [] } : decodeCsv(file);
  const parsed = await parseTariffCsv(csv);
  if (!parsed.ok) throw new ValidationError(`the tariff CSV has ${parsed.errors.length} error(s)`, parsed.errors);
  return { rates: parsed.rates, ...reading };
}

/**
 * Replaces every rate of a tariff with those of a tariff CSV (SPEC §6), creating
 * the tariff on first upload. The whole file is checked first; any line error
 * and nothing is written. Rates go in with one set-based statement.
 */
export async function putTariff(
  db: Db,
  resellerId: string,
  id: string,
  file: string | Uint8Array,
  onChange?: (tariffId: string) => void,
  actor?: Actor,
): Promise<{ id: string; rates: RateView[] } & CsvReading> {
  if (!TARIFF_ID_RE.test(id)) {
    throw new ValidationError('invalid tariff id', [{ field: 'id', value: id, message: 'letters, digits, _ . - (1 to 64)' }]);
  }
  // another reseller's tariff is not there for this one
  const owner = await db.selectFrom('tariffs').select('resellerId').where('id', '=', id).executeTakeFirst();
  if (owner && owner.resellerId !== resellerId) throw new NotFoundError('tariff');
  const { rates, ...reading } = await readTariffFile(file);
  const stored = await withTransaction(db, async (trx) => {
    // the trail keeps what the upload replaced in counts, not 50,000 rates twice
    const before = await tariffSummary(trx, resellerId, id);
    await trx
      .insertInto('tariffs')
      .values({ resellerId, id })
      .onConflict((oc) => oc.columns(['resellerId', 'id']).doUpdateSet({ updatedAt: sql`now()` }))
      .execute();
    await trx.deleteFrom('rates').where('resellerId', '=', resellerId).where('tariffId', '=', id).execute();
    // COPY is what makes 50,000 rates go in well under a second
    if (rates.length > 0) await copyIn(await rawSql(trx), COPY_RATES, rateLines(resellerId, id, rates));
    const stored = await ratesOf(trx, id);
    if (actor) {
      await recordAudit(trx, actor, {
        tenantId: null,
        resellerId,
        action: before === null ? 'tariff.create' : 'tariff.replace',
        targetType: 'tariff',
        targetId: id,
        before,
        after: { rates: stored.length, prefixes: new Set(stored.map((r) => r.prefix)).size, encoding: reading.encoding },
      });
    }
    return stored;
  });
  onChange?.(id);
  return { id, rates: stored, ...reading };
}

/** A stored tariff in the audit trail's words: how many rates and prefixes it had; null when there was none. */
async function tariffSummary(trx: Trx, resellerId: string, id: string): Promise<{ rates: number; prefixes: number } | null> {
  const row = await trx
    .selectFrom('tariffs')
    .leftJoin('rates', (j) => j.onRef('rates.resellerId', '=', 'tariffs.resellerId').onRef('rates.tariffId', '=', 'tariffs.id'))
    .select((eb) => [eb.fn.count<string>('rates.id').as('rates'), eb.fn.count<string>('rates.prefix').distinct().as('prefixes')])
    .where('tariffs.resellerId', '=', resellerId)
    .where('tariffs.id', '=', id)
    .groupBy('tariffs.id')
    .executeTakeFirst();
  return row ? { rates: Number(row.rates), prefixes: Number(row.prefixes) } : null;
}

const COPY_RATES = `COPY rates (reseller_id, tariff_id, prefix, destination, class, price_per_minute, next_price_per_minute,
  connection_fee, first_increment, next_increment, forfait_eligible, valid_from) FROM STDIN`;

function* rateLines(resellerId: string, tariffId: string, rates: readonly Rate[]): Generator<Buffer> {
  const head = copyValue(resellerId) + '\t' + copyValue(tariffId) + '\t';
  const out = new CopyBuffer();
  for (const r of rates) {
    const full = out.add(
      head + [r.prefix, r.destination, r.class, r.pricePerMinute, r.nextPricePerMinute, r.connectionFee, String(r.firstIncrement), String(r.nextIncrement),
        String(r.forfaitEligible), r.validFrom].map(copyValue).join('\t') + '\n',
    );
    if (full !== undefined) yield full;
  }
  const last = out.take();
  if (last !== undefined) yield last;
}

/** A reseller reads its tariffs; a tenant key with prices:read reads its own tenant's tariff only. */
export async function getTariff(db: Db, principal: Principal, id: string): Promise<{ id: string; rates: RateView[] }> {
  if (!TARIFF_ID_RE.test(id)) throw new NotFoundError('tariff');
  let visible: boolean;
  if (principal.kind === 'reseller') {
    visible = !!(await db.selectFrom('tariffs').select('id').where('id', '=', id).where('resellerId', '=', principal.resellerId).executeTakeFirst());
  } else {
    visible = !!(await db.selectFrom('tenants').select('id').where('id', '=', principal.tenantId).where('tariffId', '=', id).executeTakeFirst());
  }
  if (!visible) throw new NotFoundError('tariff');
  return { id, rates: await ratesOf(db, id) };
}

/**
 * Compiled tariff indexes, kept in memory for authorization and rating, and
 * dropped when a tariff is uploaded again through this process.
 */
export class TariffIndexCache {
  private readonly indexes = new LoadingCache<TariffIndex>((tariffId) => this.load(tariffId));
  constructor(private readonly db: Db) {}

  get(tariffId: string): Promise<TariffIndex> {
    return this.indexes.get(tariffId);
  }

  /** The tariff's index when it is built already, else undefined (then `get` builds it). */
  peek(tariffId: string): TariffIndex | undefined {
    return this.indexes.peek(tariffId);
  }

  invalidate(tariffId?: string): void {
    if (tariffId) this.indexes.delete(tariffId);
    else this.indexes.clear();
  }

  private async load(tariffId: string): Promise<TariffIndex> {
    const rates = await ratesOf(this.db, tariffId);
    return buildTariffIndex(rates);
  }
}
