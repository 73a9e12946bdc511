/**
 * Tariffs: the rate types, the CSV reader, and the immutable look-up index.
 *
 * Look-up rule: the rate of a number is the one with the longest prefix of its
 * digits that is valid at the call's start time (the greatest validFrom ≤ start).
 * When the longest matching prefix has no rate valid yet at that time (its first
 * rate starts later), the next shorter matching prefix is used, and so on: a
 * new, more specific rate announced in advance must not leave calls unrated
 * until it starts.
 */
import { compileRate, type CompiledRate, type Rate } from './rate.js';

export { compileRate, RATE_CLASSES, EPOCH_ISO, MAX_INCREMENT_SECONDS, isRateClass, parseInstant, formatInstant } from './rate.js';
export type { Rate, RateClass, CompiledRate } from './rate.js';
export { tariffFromCsv, tariffCsvText, parseBooleanCell } from './tariff-csv.js';
export type { CsvLineError, CsvRow, TariffCsvResult, TariffCsvOptions } from './tariff-csv.js';

export interface TariffIndex {
  /** Number of rates in the index. */
  readonly size: number;
  /** Every compiled rate, ordered by prefix then validFrom. */
  readonly rates: readonly CompiledRate[];
  /**
   * Rate for `digits` (E.164 digits without '+', a leading '+' is skipped) at
   * `atEpochMs`, or undefined when no prefix matches with a rate valid then.
   * Allocation-free: a walk down a digit trie.
   */
  lookup(digits: string, atEpochMs: number): CompiledRate | undefined;
}

/** Digit trie: node n's child for digit k is children[n * 10 + k] (0 = none; the root is 0). */
class TrieTariffIndex implements TariffIndex {
  readonly size: number;
  readonly rates: readonly CompiledRate[];
  readonly #children: Int32Array;
  /** Per node, its rates sorted by validFrom ascending, or undefined. */
  readonly #ratesAt: ReadonlyArray<readonly CompiledRate[] | undefined>;

  constructor(compiled: CompiledRate[]) {
    compiled.sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : a.validFromMs - b.validFromMs));
    let children = new Int32Array(10 * 1024);
    const ratesAt: (CompiledRate[] | undefined)[] = [undefined];
    for (let i = 0; i < compiled.length; i++) {
      const rate = compiled[i]!;
      const previous = compiled[i - 1];
      if (previous !== undefined && previous.prefix === rate.prefix && previous.validFromMs === rate.validFromMs) {
        throw new RangeError(`two rates for prefix ${rate.prefix} valid from ${rate.rate.validFrom}`);
      }
      let node = 0;
      for (let j = 0; j < rate.prefix.length; j++) {
        const slot = node * 10 + (rate.prefix.charCodeAt(j) - 48);
        let next = children[slot]!;
        if (next === 0) {
          next = ratesAt.length;
          ratesAt.push(undefined);
          if ((next + 1) * 10 > children.length) {
            const grown = new Int32Array(children.length * 2);
            grown.set(children);
            children = grown;
          }
          children[slot] = next;
        }
        node = next;
      }
      const list = ratesAt[node];
      if (list === undefined) ratesAt[node] = [rate];
      else list.push(rate);
    }
    this.#children = children;
    this.#ratesAt = ratesAt;
    this.rates = Object.freeze(compiled);
    this.size = compiled.length;
  }

  lookup(digits: string, atEpochMs: number): CompiledRate | undefined {
    const children = this.#children;
    const ratesAt = this.#ratesAt;
    let best: CompiledRate | undefined;
    let node = 0;
    for (let i = digits.charCodeAt(0) === 43 ? 1 : 0; i < digits.length; i++) {
      const digit = digits.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) break;
      node = children[node * 10 + digit]!;
      if (node === 0) break;
      const list = ratesAt[node];
      if (list !== undefined) {
        const valid = validAt(list, atEpochMs);
        if (valid !== undefined) best = valid;
      }
    }
    return best;
  }
}

/** The rate with the greatest validFromMs ≤ at, in a list sorted by validFromMs. */
function validAt(list: readonly CompiledRate[], at: number): CompiledRate | undefined {
  const last = list[list.length - 1]!;
  if (last.validFromMs <= at) return last;
  let lo = 0;
  let hi = list.length - 1; // list[hi] is not valid yet
  if (list[0]!.validFromMs > at) return undefined;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.validFromMs <= at) lo = mid;
    else hi = mid;
  }
  return list[lo];
}

/**
 * Compiles and indexes rates. Throws RangeError for an invalid rate or two
 * rates with the same prefix and validFrom.
 */
export function buildTariffIndex(rates: readonly Rate[]): TariffIndex {
  return new TrieTariffIndex(rates.map(compileRate));
}
