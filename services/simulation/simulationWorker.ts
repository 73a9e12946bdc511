/**
 * The what-if simulation's worker thread (services/shared/workerPool.ts): the
 * CDRs' COPY bytes are parsed and rated here, off the thread that answers the
 * PBX. One simulation has one worker of its own; it rates one tenant at a time
 * (`tenant`, then `rows` as the bytes arrive, then `end` for the tenant's sums).
 */
import { workerData } from 'node:worker_threads';
import { buildTariffIndex, type Rate, type TariffIndex } from '../../engine/index.js';
import { periodKeyer } from '../../engine/periods.js';
import { serveTasks } from '../shared/workerPool.js';
import { CopyRowReader, TenantTallier, type TenantTally } from './tally.js';
import type { SimulationTenantInput } from './simulate.js';

let tariff: TariffIndex | undefined;
let current: { tallier: TenantTallier; reader: CopyRowReader } | undefined;

serveTasks(
  {
    tariff: (rates: Rate[]) => {
      tariff = buildTariffIndex(rates);
      return { result: rates.length };
    },
    tenant: (t: SimulationTenantInput) => {
      const rules = { tariff, freeNumbers: new Set(t.freeNumbers), currentPeriod: t.currentPeriod, periodOf: periodKeyer(t.timezone) };
      current = { tallier: new TenantTallier(t.tenantId, rules, new Map(t.usage), new Map(t.users.map((u) => [u.id, u]))), reader: new CopyRowReader() };
      return { result: true };
    },
    rows: (bytes: Uint8Array) => {
      const c = open();
      return { result: c.reader.rows(bytes, (row) => c.tallier.add(row)) };
    },
    end: (): { result: TenantTally } => {
      const c = open();
      c.reader.rows(undefined, (row) => c.tallier.add(row));
      current = undefined;
      return { result: c.tallier.result() };
    },
  },
  workerData as { nice?: number },
);

function open() {
  if (current === undefined) throw new Error('no tenant being simulated');
  return current;
}
