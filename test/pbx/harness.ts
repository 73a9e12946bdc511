/**
 * The real switch around a real Forfait: Kamailio with integrations/kamailio's
 * config, sipp callers and callees with integrations/kamailio/sipp's scenarios.
 * Shared by test/pbx/kamailio.test.ts and `npm run bench -- pbx` (no vitest here).
 * Everything listens on 127.0.0.1 only.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

export const root = path.resolve(import.meta.dirname, '../..');
export const kamailioDir = path.join(root, 'integrations/kamailio');
export const scenarios = {
  caller: path.join(kamailioDir, 'sipp/caller.xml'),
  callee: path.join(kamailioDir, 'sipp/callee.xml'),
  phone: path.join(kamailioDir, 'sipp/phone.xml'),
  phoneNotify: path.join(kamailioDir, 'sipp/phone-notify.xml'),
};

/** The binaries among `names` that are not on the PATH. */
export function missingBinaries(names: string[]): string[] {
  return names.filter((n) => spawnSync('sh', ['-c', `command -v ${n}`]).status !== 0);
}

/** A UDP port nobody holds on 127.0.0.1 right now. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function udpPortTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(true);
    });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(false)));
  });
}

/** A child in its own process group, its output kept for error messages. */
export interface Child {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<number | null>;
}

export function startChild(cmd: string, args: string[], options: { cwd?: string; keepOutput?: boolean } = {}): Child {
  let out = '';
  const child = spawn(cmd, args, { cwd: options.cwd ?? root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (d: Buffer) => {
    if (options.keepOutput === false) return;
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  let gone = false;
  void exited.then(() => (gone = true));
  return {
    child,
    output: () => out,
    exited,
    async stop(graceMs = 3000) {
      if (!gone && child.pid) {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        const timer = setTimeout(() => {
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }, graceMs);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

export interface KamailioOptions {
  /** a folder of its own (runtime files) */
  dir: string;
  port: number;
  /** where allowed calls go, e.g. the sipp callee: sip:127.0.0.1:5080 */
  gateway: string;
  forfaitUrl: string;
  forfaitUrl2?: string;
  key: string;
  httpTimeout?: number;
  unreachable?: 'refuse' | 'free';
  /** trust X-Forfait-Identifiant rather than the From user */
  identifiantHeader?: boolean;
  children?: number;
  logLevel?: number;
  /** the same proxy without Forfait (the benchmark's anchor) */
  off?: boolean;
  /** serve Kamailio's JSON-RPC over HTTP on this TCP port (device restarts, forfait-devices.cfg) */
  rpcPort?: number;
}

export interface Kamailio extends Child {
  port: number;
}

/** Kamailio with integrations/kamailio/kamailio.cfg, in the foreground, logging to stderr; resolves once it answers SIP. */
export async function startKamailio(o: KamailioOptions): Promise<Kamailio> {
  await mkdir(o.dir, { recursive: true });
  const defines: Record<string, string> = {
    LISTEN: `udp:127.0.0.1:${o.port}`,
    GATEWAY: `"${o.gateway}"`,
    FORFAIT_URL: `"${o.forfaitUrl}"`,
    FORFAIT_URL_2: `"${o.forfaitUrl2 ?? ''}"`,
    FORFAIT_KEY: `"${o.key}"`,
    FORFAIT_HTTP_TIMEOUT: String(o.httpTimeout ?? 2),
    FORFAIT_UNREACHABLE: `"${o.unreachable ?? 'refuse'}"`,
    CHILDREN: String(o.children ?? 2),
    LOG_LEVEL: String(o.logLevel ?? 2),
  };
  if (o.identifiantHeader) defines.FORFAIT_IDENTIFIANT_HEADER = '1';
  if (o.off) defines.FORFAIT_OFF = '1';
  if (o.rpcPort !== undefined) defines.FORFAIT_RPC_LISTEN = `tcp:127.0.0.1:${o.rpcPort}`;
  const args = ['-f', path.join(kamailioDir, 'kamailio.cfg'), '-DD', '-E', '-Y', o.dir, '-m', '64', '-M', '8'];
  for (const [k, v] of Object.entries(defines)) args.push('-A', `${k}=${v}`);
  const k = startChild('kamailio', args, { cwd: kamailioDir });
  try {
    await sipReachable(o.port, 20_000, k);
  } catch (err) {
    await k.stop();
    throw new Error(`${String(err)}\n--- kamailio ---\n${k.output().slice(-5000)}`);
  }
  return { ...k, port: o.port };
}

/** Sends OPTIONS until the SIP server on `port` answers anything. */
async function sipReachable(port: number, ms: number, proc?: Child): Promise<void> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const local = s.address().port;
  let answered = false;
  s.on('message', () => (answered = true));
  let exited = false;
  void proc?.exited.then(() => (exited = true));
  const until = Date.now() + ms;
  try {
    while (!answered && Date.now() < until && !exited) {
      const branch = `z9hG4bK${randomBytes(6).toString('hex')}`;
      const msg =
        `OPTIONS sip:ping@127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${local};branch=${branch}\r\n` +
        `From: <sip:probe@127.0.0.1:${local}>;tag=${branch}\r\nTo: <sip:ping@127.0.0.1:${port}>\r\nCall-ID: ${branch}@probe\r\n` +
        `CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`;
      s.send(msg, port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    s.close();
  }
  if (!answered) throw new Error(exited ? `the SIP server on port ${port} exited` : `no SIP answer on port ${port} within ${ms} ms`);
}

/** One call the caller places: see integrations/kamailio/sipp/caller.xml. */
export interface CallRow {
  fromUser: string;
  /** X-Forfait-Identifiant (Kamailio reads it only with identifiantHeader) */
  identifiant: string;
  dialled: string;
  expectStatus: 200 | 403 | 503;
  expectReason: string;
  callee: 'short' | 'cut';
}

export async function writeInjection(file: string, rows: CallRow[]): Promise<void> {
  const lines = rows.map((r) => [r.fromUser, r.identifiant, r.dialled, r.expectStatus, r.expectReason, r.callee].join(';'));
  await writeFile(file, ['SEQUENTIAL', ...lines, ''].join('\n'));
}

/** The callee: answers every call relayed to 127.0.0.1:`port` until stopped. */
export async function startCallee(dir: string, port: number): Promise<Child & { logFile: string }> {
  await mkdir(dir, { recursive: true });
  const logFile = path.join(dir, `callee-${port}.log`);
  const c = startChild(
    'sipp',
    ['-sf', scenarios.callee, '-i', '127.0.0.1', '-p', String(port), '-t', 'u1', '-nostdin', '-trace_logs', '-log_file', logFile,
      '-trace_err', '-error_file', path.join(dir, `callee-${port}.errors.log`), '-watchdog_major_maxtriggers', '1000', '-watchdog_minor_maxtriggers', '100000'],
    { keepOutput: true },
  );
  // sipp answers nothing outside its scenario: it is up once it holds the port
  const until = Date.now() + 10_000;
  let exited = false;
  void c.exited.then(() => (exited = true));
  while (!(await udpPortTaken(port))) {
    if (exited || Date.now() > until) {
      await c.stop();
      throw new Error(`sipp callee did not start on port ${port}: ${c.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ...c, logFile };
}

export interface CallerRun {
  exitCode: number | null;
  log: string;
  errors: string;
  /** seconds from start to exit */
  elapsed: number;
  output: string;
}

/**
 * Places the calls of `rows` through the SIP server on `target` and waits for
 * sipp to finish: exit code 0 when every call had its expected outcome.
 */
export async function runCaller(
  dir: string,
  target: number,
  rows: CallRow[],
  o: { rate?: number; limit?: number; calls?: number; timeoutSeconds?: number; name?: string } = {},
): Promise<CallerRun> {
  await mkdir(dir, { recursive: true });
  const name = o.name ?? `caller-${randomBytes(3).toString('hex')}`;
  const inf = path.join(dir, `${name}.csv`);
  const logFile = path.join(dir, `${name}.log`);
  const errFile = path.join(dir, `${name}.errors.log`);
  await writeInjection(inf, rows);
  const port = await freeUdpPort();
  const started = performance.now();
  const c = startChild('sipp', [
    `127.0.0.1:${target}`, '-sf', scenarios.caller, '-inf', inf, '-i', '127.0.0.1', '-p', String(port), '-t', 'u1',
    '-m', String(o.calls ?? rows.length), '-l', String(o.limit ?? 1), '-r', String(o.rate ?? 10), '-nostdin',
    '-trace_logs', '-log_file', logFile, '-trace_err', '-error_file', errFile,
    '-timeout', `${o.timeoutSeconds ?? 120}s`, '-timeout_error',
    '-watchdog_major_maxtriggers', '1000', '-watchdog_minor_maxtriggers', '100000',
  ]);
  const exitCode = await c.exited;
  const elapsed = (performance.now() - started) / 1000;
  const read = (f: string) => readFile(f, 'utf8').catch(() => '');
  return { exitCode, log: await read(logFile), errors: await read(errFile), elapsed, output: c.output().slice(-4000) };
}

export interface Outcome {
  callId: string;
  status: number;
  reason: string;
  tick: number;
}

/** The caller's `outcome <Call-ID> <status> <reason…> <ms>` lines, in order. */
export function outcomes(log: string): Outcome[] {
  const found: Outcome[] = [];
  for (const line of log.split('\n')) {
    const p = line.trim().split(/\s+/);
    if (p[0] !== 'outcome' || p.length < 5) continue;
    found.push({ callId: p[1]!, status: Number(p[2]), reason: p.slice(3, -1).join(' '), tick: Number(p.at(-1)) });
  }
  return found;
}

export interface CalleeCall {
  callId: string;
  mode: string;
  invitedAt: number;
  answeredAt?: number;
  /** when it saw the BYE (from the caller or Kamailio) or its own BYE was answered */
  endedAt?: number;
  endedBy?: 'byed' | 'hungup';
}

/** What the callee saw, by Call-ID. */
export function calleeCalls(log: string): Map<string, CalleeCall> {
  const calls = new Map<string, CalleeCall>();
  for (const line of log.split('\n')) {
    const p = line.trim().split(/\s+/);
    const c = p[1] ? calls.get(p[1]) : undefined;
    if (p[0] === 'invite' && p.length === 4) calls.set(p[1]!, { callId: p[1]!, mode: p[2]!, invitedAt: Number(p[3]) });
    else if (c && p[0] === 'answered') c.answeredAt = Number(p[2]);
    else if (c && (p[0] === 'byed' || p[0] === 'hungup')) {
      c.endedAt = Number(p[2]);
      c.endedBy = p[0];
    }
  }
  return calls;
}

// --- Forfait over HTTP (a spawned `forfait serve`) ---------------------------

export interface Http {
  status: number;
  json: any;
  text: string;
}

export async function http(base: string, key: string, method: string, p: string, body?: unknown, contentType = 'application/json'): Promise<Http> {
  const res = await fetch(`${base}${p}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

async function must(res: Promise<Http>, status: number, what: string): Promise<Http> {
  const r = await res;
  if (r.status !== status) throw new Error(`${what}: ${r.status} ${r.text}`);
  return r;
}

export interface UserSpec {
  identifiant: string;
  matricule: string;
  balance: string;
  /** authorized numbers by slot (1–10) */
  numbers: Record<number, string>;
}

export interface Provisioned {
  tenantId: string;
  adminKey: string;
  pbxKey: string;
  users: Map<string, string>;
}

/** A tariff, a tenant on it, its pbx key and users with money, all through the HTTP API as a reseller and an administrateur would. */
export async function provision(
  base: string,
  resellerKey: string,
  spec: { name: string; tariffId: string; tariffCsv: string; users: UserSpec[]; tenant?: Record<string, unknown> },
): Promise<Provisioned> {
  await must(http(base, resellerKey, 'PUT', `/v1/tariffs/${spec.tariffId}`, spec.tariffCsv, 'text/csv'), 200, 'tariff');
  const t = await must(
    http(base, resellerKey, 'POST', '/v1/tenants', { name: spec.name, productType: 'pro', tariffId: spec.tariffId, ...spec.tenant }),
    201,
    'tenant',
  );
  const adminKey: string = t.json.adminKey;
  const pbx = await must(http(base, adminKey, 'POST', '/v1/keys', { name: 'kamailio', principal: 'pbx' }), 201, 'pbx key');
  const users = new Map<string, string>();
  for (const u of spec.users) {
    const numbers = Array.from({ length: 10 }, (_, i) => u.numbers[i + 1] ?? null);
    const created = await must(
      http(base, adminKey, 'POST', '/v1/users', { fullName: `Caller ${u.identifiant}`, matricule: u.matricule, identifiant: u.identifiant, forfaitMinutes: 0, authorizedNumbers: numbers }),
      201,
      `user ${u.identifiant}`,
    );
    users.set(u.identifiant, created.json.id);
    if (u.balance !== '0') {
      await must(
        http(base, adminKey, 'POST', `/v1/users/${created.json.id}/ledger`, { kind: 'topup', amount: u.balance, idempotencyKey: `seed-${u.identifiant}` }),
        201,
        'top-up',
      );
    }
  }
  return { tenantId: t.json.tenant.id, adminKey, pbxKey: pbx.json.key, users };
}
