/**
 * `npm run bench -- pbx`: calls per second through Kamailio
 * (integrations/kamailio) with Forfait authorizing each call and rating its
 * end, with no failed call. The same sipp scenarios as test/pbx/kamailio.test.ts
 * (integrations/kamailio/sipp): every call rings, is answered, lasts 2.7 s and
 * is hung up by the callee. The offered rate doubles from PBX_BENCH_RATES'
 * first value while every call of a step (PBX_BENCH_SECONDS of traffic)
 * succeeds. Anchor: the same steps through the same Kamailio with Forfait
 * left out (-A FORFAIT_OFF=1), measured in the same run.
 * Everything listens on 127.0.0.1; loads are bounded (at most the last rate ×
 * the step's seconds calls per step).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { freePort } from '../db/embedded.js';
import { embeddedUrl, healthy, spawnServer } from '../test/support/server.js';
import { freeUdpPort, missingBinaries, provision, runCaller, startCallee, startKamailio, type CallRow } from '../test/pbx/harness.js';
import { benchLine } from './support.js';

const RATES = (process.env.PBX_BENCH_RATES ?? '25,50,100,200').split(',').map(Number);
const SECONDS = Number(process.env.PBX_BENCH_SECONDS ?? '5');
const USERS = 100;
// Kamailio's workers: each waits on its HTTP request to Forfait (http_client blocks)
const CHILDREN = Number(process.env.PBX_BENCH_CHILDREN ?? '16');
const HOLD_S = 2.7;
const MOBILE = '+33612345678';

interface Step {
  rate: number;
  calls: number;
  ok: boolean;
  /** calls set up per second over the step (its calls over the time it took, less the last call's hold) */
  achieved: number;
  elapsed: number;
}

async function steps(dir: string, port: number, rows: (i: number) => CallRow, label: string): Promise<Step[]> {
  const done: Step[] = [];
  for (const rate of RATES) {
    const calls = rate * SECONDS;
    const list = Array.from({ length: calls }, (_, i) => rows(i));
    const run = await runCaller(dir, port, list, { rate, limit: Math.ceil(rate * (HOLD_S + 2) * 1.5), timeoutSeconds: SECONDS + 30, name: `${label}-${rate}` });
    const achieved = calls / Math.max(run.elapsed - HOLD_S, 0.001);
    const ok = run.exitCode === 0;
    done.push({ rate, calls, ok, achieved, elapsed: run.elapsed });
    process.stdout.write(`${label.padEnd(8)} ${String(rate).padStart(4)} calls/s offered, ${calls} calls: ${ok ? 'all succeeded' : `FAILED (sipp exit ${run.exitCode})`}, ${achieved.toFixed(1)} calls/s set up, ${run.elapsed.toFixed(1)} s\n`);
    if (!ok) {
      process.stdout.write(run.errors.split('\n').filter((l) => /Aborting|timeout|Dead call/.test(l)).slice(0, 8).join('\n') + '\n');
      break;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return done;
}

function best(s: Step[]): Step | undefined {
  return s.filter((x) => x.ok).at(-1);
}

export async function main(): Promise<void> {
  const missing = missingBinaries(['kamailio', 'sipp']);
  if (missing.length) throw new Error(`pbx benchmark needs ${missing.join(', ')} (apt-get install kamailio kamailio-utils-modules kamailio-extra-modules sip-tester)`);
  const dir = await mkdtemp(path.join(tmpdir(), 'forfait-bench-pbx-'));
  const port = await freePort();
  const server = spawnServer(path.join(dir, 'data'), port);
  const stops: (() => Promise<unknown>)[] = [];
  try {
    await healthy(port);
    const base = `http://127.0.0.1:${port}`;
    const resellerKey = (await readFile(path.join(dir, 'data', 'bootstrap-key'), 'utf8')).trim();
    const ids = Array.from({ length: USERS }, (_, i) => ({ identifiant: String(3_000_000 + i), matricule: String(30_000_000_000_000 + i) }));
    const tenant = await provision(base, resellerKey, {
      name: 'bench-pbx',
      tariffId: 'bench-pbx',
      tariffCsv: 'prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible\n33,France,mobile,0.60,0,1,1,false\n',
      users: ids.map((u) => ({ ...u, balance: '1000', numbers: { 1: MOBILE } })),
    });
    const calleePort = await freeUdpPort();
    const callee = await startCallee(dir, calleePort);
    stops.push(() => callee.stop());
    const common = { gateway: `sip:127.0.0.1:${calleePort}`, forfaitUrl: base, key: tenant.pbxKey, children: CHILDREN, logLevel: 1 };
    const row = (i: number): CallRow => {
      const id = ids[i % USERS]!.identifiant;
      return { fromUser: id, identifiant: id, dialled: '0612345678', expectStatus: 200, expectReason: 'OK', callee: 'short' };
    };

    const bare = await startKamailio({ ...common, dir: path.join(dir, 'k-bare'), port: await freeUdpPort(), off: true });
    stops.push(() => bare.stop());
    const anchorSteps = await steps(dir, bare.port, row, 'bare');
    await bare.stop();

    const k = await startKamailio({ ...common, dir: path.join(dir, 'k-forfait'), port: await freeUdpPort() });
    stops.push(() => k.stop());
    const forfaitSteps = await steps(dir, k.port, row, 'forfait');

    const sql = postgres(await embeddedUrl(path.join(dir, 'data')), { max: 1, onnotice: () => undefined });
    const [counts] = await sql<{ open: string; rated: string }[]>`
      SELECT count(*) FILTER (WHERE status = 'open')::text AS open, count(*) FILTER (WHERE status = 'rated')::text AS rated FROM reservations`;
    await sql.end();
    const placed = forfaitSteps.filter((s) => s.ok).reduce((n, s) => n + s.calls, 0);
    process.stdout.write(`reservations after the run: ${counts!.rated} rated, ${counts!.open} open (${placed} calls in the steps that succeeded)\n`);

    const value = best(forfaitSteps);
    const anchor = best(anchorSteps);
    if (!value || !anchor) throw new Error('no step succeeded');
    process.stdout.write(
      `highest rate with no failed call: ${value.rate} calls/s through Kamailio + Forfait (${value.achieved.toFixed(1)} set up), ${anchor.rate} calls/s through Kamailio alone (${anchor.achieved.toFixed(1)}); rates tried ${RATES.join(', ')}\n`,
    );
    process.stdout.write(benchLine('pbx', value.rate, 'calls/s', anchor.rate) + '\n');
  } finally {
    for (const stop of stops.reverse()) await stop();
    server.child.kill('SIGTERM');
    await server.exited;
    await rm(dir, { recursive: true, force: true });
  }
}
