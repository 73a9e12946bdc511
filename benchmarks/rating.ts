/**
 * Rating benchmark: CDRs rated per second by the engine (tariff look-up +
 * rateCall) on one core, against the plain decimal.js reference rating the same
 * CDRs in the same run. Also prints look-ups/s, maxSeconds computations/s and the
 * time to parse and index a 50 000-rate tariff CSV.
 *
 *   npx tsx benchmarks/rating.ts          (or through benchmarks/run.ts: main())
 *
 * Last line: BENCH rating value=<cdrs/s> unit=cdrs/s anchor=<reference cdrs/s> ratio=<value/anchor>
 * Exits non-zero if the engine and the reference disagree on any anchor CDR.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import {
  buildTariffIndex,
  formatMoney4,
  formatPrice,
  maxCallSeconds,
  rateCall,
  type Money4,
  type PriceMicros,
  type Rate,
  type RateClass,
} from '../engine/index.js';
import { groupRatesByPrefix, referenceLookupGrouped, referenceRateCall } from '../engine/reference.js';
import { parseTariffCsv } from '../services/tariffs/tariffs.js';
import { random } from '../test/fixtures/random.js';

const CDR_COUNT = 1_000_000;
const ANCHOR_COUNT = 100_000;
const TARIFF_PREFIXES = 5_000;
const CSV_RATES = 50_000;
const DAY_MS = 86_400_000;
const FROM_MS = Date.UTC(2025, 0, 1);

const INCREMENTS: ReadonlyArray<readonly [number, number]> = [[60, 60], [30, 6], [1, 1], [60, 1], [30, 30], [60, 30]];
const CLASSES: readonly RateClass[] = ['fixed', 'fixed', 'mobile', 'mobile', 'international', 'international', 'special', 'free'];

function syntheticRates(count: number, rnd: () => number, versions: boolean): Rate[] {
  const prefixes = new Set<string>();
  while (prefixes.size < count) {
    const length = 2 + Math.floor(rnd() * 6); // 2..7 digits
    let p = String(1 + Math.floor(rnd() * 9));
    while (p.length < length) p += String(Math.floor(rnd() * 10));
    prefixes.add(p);
  }
  const price = (): string => formatPrice(Math.floor(rnd() * (rnd() < 0.5 ? 200_000 : 2_000_000)) as PriceMicros);
  const rates: Rate[] = [];
  for (const prefix of prefixes) {
    const [firstIncrement, nextIncrement] = INCREMENTS[Math.floor(rnd() * INCREMENTS.length)]!;
    const klass = CLASSES[Math.floor(rnd() * CLASSES.length)]!;
    const base: Rate = {
      prefix,
      destination: `Destination ${prefix}`,
      class: klass,
      pricePerMinute: price(),
      nextPricePerMinute: price(),
      connectionFee: rnd() < 0.5 ? '0.0000' : price(),
      firstIncrement,
      nextIncrement,
      forfaitEligible: klass === 'fixed' || klass === 'mobile',
      validFrom: '1970-01-01T00:00:00Z',
    };
    rates.push(base);
    if (versions && rnd() < 0.2) {
      rates.push({ ...base, pricePerMinute: price(), validFrom: new Date(FROM_MS + Math.floor(rnd() * 365) * DAY_MS).toISOString() });
    }
  }
  return rates;
}

interface Cdrs {
  callee: string[];
  startMs: Float64Array;
  duration: Int32Array;
  answered: Uint8Array;
  forfait: Int32Array;
  billing: Uint8Array;
  free: Uint8Array;
}

function syntheticCdrs(count: number, rates: readonly Rate[], rnd: () => number): Cdrs {
  const cdrs: Cdrs = {
    callee: new Array<string>(count),
    startMs: new Float64Array(count),
    duration: new Int32Array(count),
    answered: new Uint8Array(count),
    forfait: new Int32Array(count),
    billing: new Uint8Array(count),
    free: new Uint8Array(count),
  };
  for (let i = 0; i < count; i++) {
    let number = rates[Math.floor(rnd() * rates.length)]!.prefix;
    while (number.length < 11) number += String(Math.floor(rnd() * 10));
    cdrs.callee[i] = number;
    cdrs.startMs[i] = FROM_MS + Math.floor(rnd() * 730 * DAY_MS);
    const answered = rnd() < 0.8;
    cdrs.answered[i] = answered ? 1 : 0;
    // Mostly short calls, a few long ones.
    cdrs.duration[i] = answered ? Math.floor(-Math.log(1 - rnd()) * 150) : 0;
    cdrs.forfait[i] = rnd() < 0.5 ? 0 : Math.floor(rnd() * 3_000);
    cdrs.billing[i] = rnd() < 0.9 ? 1 : 0;
    cdrs.free[i] = rnd() < 0.01 ? 1 : 0;
  }
  return cdrs;
}

function tariffCsv(rates: readonly Rate[]): string {
  const lines = ['prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible,next_price_per_minute,valid_from'];
  for (const r of rates) {
    lines.push(
      `${r.prefix},"${r.destination}",${r.class},${r.pricePerMinute},${r.connectionFee},${r.firstIncrement},${r.nextIncrement},${r.forfaitEligible ? 'true' : 'false'},${r.nextPricePerMinute},${r.validFrom}`,
    );
  }
  return lines.join('\r\n') + '\r\n';
}

/** The i-th synthetic CDR as the input of a rating function (the engine's or the reference's). */
function callAt<R>(cdrs: Cdrs, i: number, rate: R) {
  return {
    durationSeconds: cdrs.duration[i]!,
    answered: cdrs.answered[i] === 1,
    rate,
    remainingForfaitSeconds: cdrs.forfait[i]!,
    billingEnabled: cdrs.billing[i] === 1,
    freeNumber: cdrs.free[i] === 1,
  };
}

const perSecond = (n: number, ms: number): number => Math.round((n * 1000) / ms);

export async function main(): Promise<void> {
  const rnd = random(20_260_101);
  const rates = syntheticRates(TARIFF_PREFIXES, rnd, true);
  const index = buildTariffIndex(rates);
  const cdrs = syntheticCdrs(CDR_COUNT, rates, rnd);
  console.log(`tariff: ${index.size} rates on ${TARIFF_PREFIXES} prefixes; ${CDR_COUNT} CDRs`);

  // Results of the fast path, kept to check the anchor subset against the reference.
  const billable = new Int32Array(CDR_COUNT);
  const forfaitUsed = new Int32Array(CDR_COUNT);
  const charged = new Int32Array(CDR_COUNT);
  const cost = new Float64Array(CDR_COUNT); // integer Money4 values, exact in a float64
  const rated = new Uint8Array(CDR_COUNT);

  const rateAll = (count: number): number => {
    let total = 0;
    for (let i = 0; i < count; i++) {
      const rate = index.lookup(cdrs.callee[i]!, cdrs.startMs[i]!);
      if (rate === undefined) continue;
      const r = rateCall(callAt(cdrs, i, rate));
      billable[i] = r.billableSeconds;
      forfaitUsed[i] = r.forfaitSeconds;
      charged[i] = r.chargedSeconds;
      cost[i] = r.cost;
      rated[i] = 1;
      total += r.cost;
    }
    return total;
  };

  rateAll(200_000); // warm-up
  let fastMs = Infinity;
  let total = 0;
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    total = rateAll(CDR_COUNT);
    fastMs = Math.min(fastMs, performance.now() - t0);
  }
  const fastRate = perSecond(CDR_COUNT, fastMs);
  console.log(`engine: ${CDR_COUNT} CDRs rated in ${fastMs.toFixed(1)} ms (best of 3) = ${fastRate} CDRs/s; total cost ${formatMoney4(total as Money4)}`);

  // Anchor: the plain decimal.js reference, look-up included, on the first ANCHOR_COUNT CDRs.
  const byPrefix = groupRatesByPrefix(rates);
  let mismatches = 0;
  const t1 = performance.now();
  const referenceResults = new Array<ReturnType<typeof referenceRateCall> | undefined>(ANCHOR_COUNT);
  for (let i = 0; i < ANCHOR_COUNT; i++) {
    const rate = referenceLookupGrouped(byPrefix, cdrs.callee[i]!, cdrs.startMs[i]!);
    if (rate === undefined) continue;
    referenceResults[i] = referenceRateCall(callAt(cdrs, i, rate));
  }
  const referenceMs = performance.now() - t1;
  const referenceRate = perSecond(ANCHOR_COUNT, referenceMs);
  for (let i = 0; i < ANCHOR_COUNT; i++) {
    const ref = referenceResults[i];
    const same =
      ref === undefined
        ? rated[i] === 0
        : rated[i] === 1 &&
          ref.billableSeconds === billable[i] &&
          ref.forfaitSeconds === forfaitUsed[i] &&
          ref.chargedSeconds === charged[i] &&
          ref.cost === formatMoney4(cost[i] as Money4);
    if (!same) {
      if (mismatches < 5) console.error(`MISMATCH on CDR ${i}: engine cost ${formatMoney4(cost[i] as Money4)}, reference ${JSON.stringify(ref)}`);
      mismatches++;
    }
  }
  console.log(`reference (decimal.js): ${ANCHOR_COUNT} CDRs in ${referenceMs.toFixed(1)} ms = ${referenceRate} CDRs/s; engine == reference on ${ANCHOR_COUNT - mismatches}/${ANCHOR_COUNT}`);

  // Prefix look-ups alone.
  let found = 0;
  const t2 = performance.now();
  for (let i = 0; i < CDR_COUNT; i++) if (index.lookup(cdrs.callee[i]!, cdrs.startMs[i]!) !== undefined) found++;
  const lookupMs = performance.now() - t2;
  console.log(`look-ups: ${perSecond(CDR_COUNT, lookupMs)} /s (${found} found)`);

  // maxSeconds computations (authorization), default 14 400 s cap.
  const compiled = index.rates;
  const moneyFor = new Int32Array(CDR_COUNT);
  for (let i = 0; i < CDR_COUNT; i++) moneyFor[i] = Math.floor(rnd() * 600_000) - 10_000; // -1.00 .. 59.00
  let held = 0;
  const t3 = performance.now();
  for (let i = 0; i < CDR_COUNT; i++) {
    const a = maxCallSeconds({
      rate: compiled[i % compiled.length]!,
      availableForfaitSeconds: cdrs.forfait[i]!,
      availableMoney: moneyFor[i] as Money4,
      billingEnabled: cdrs.billing[i] === 1,
      maxCallSeconds: 14_400,
    });
    held += a.maxSeconds;
  }
  const maxMs = performance.now() - t3;
  console.log(`maxSeconds: ${perSecond(CDR_COUNT, maxMs)} computations/s (mean ${Math.round(held / CDR_COUNT)} s)`);

  // Tariff CSV of 50 000 rates: parse + index.
  const csv = tariffCsv(syntheticRates(CSV_RATES, random(7), false));
  const t4 = performance.now();
  const parsed = await parseTariffCsv(csv);
  const t5 = performance.now();
  if (!parsed.ok) throw new Error(`synthetic tariff CSV refused: ${JSON.stringify(parsed.errors.slice(0, 3))}`);
  const bigIndex = buildTariffIndex(parsed.rates);
  const t6 = performance.now();
  console.log(
    `tariff CSV: ${bigIndex.size} rates (${(csv.length / 1e6).toFixed(1)} MB) parsed in ${(t5 - t4).toFixed(0)} ms + indexed in ${(t6 - t5).toFixed(0)} ms = ${(t6 - t4).toFixed(0)} ms (target < 2000 ms)`,
  );

  if (mismatches > 0) {
    console.error(`${mismatches} CDRs differ between the engine and the reference`);
    process.exitCode = 1;
  }
  console.log(`BENCH rating value=${fastRate} unit=cdrs/s anchor=${referenceRate} ratio=${(fastRate / referenceRate).toFixed(2)}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
