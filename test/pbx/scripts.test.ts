import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../db/embedded.js';
import { nextIds, tariffHeader } from '../support/accounts.js';
import { uniqueName } from '../support/factory.js';
import { silentServer, startServerIn, type ServerProcess } from '../support/server.js';
import { http, missingBinaries, provision, root, type Provisioned } from './harness.js';

/**
 * Issue #19: the Asterisk AGI program and the FreeSWITCH Lua script against a
 * running `forfait serve`. Asterisk and FreeSWITCH are not in Debian's archive:
 * the AGI program is spoken to as Asterisk does (AGI on stdin/stdout), the Lua
 * script runs under lua5.4 in a stub of mod_lua's session/freeswitch objects
 * whose mod_curl makes the real HTTP requests.
 */
const missing = missingBinaries(['python3', 'lua5.4', 'curl']);
const inCi = process.env.CI === 'true';
const skip = missing.length > 0 && !inCi;
if (skip) console.warn(`test/pbx/scripts.test.ts skipped: ${missing.join(', ')} not installed`);

const AGI = path.join(root, 'integrations/asterisk/forfait-authorize');
const LUA = path.join(root, 'integrations/freeswitch/forfait.lua');
const STUB = path.join(root, 'test/pbx/freeswitch-stub.lua');
const MOBILE = '+33612345678';
const TARIFF = [tariffHeader, '33,France,mobile,0.60,0,1,1,false,,'].join('\n');

let dir: string;
let server: ServerProcess | undefined;
let base: string;
let tenant: Provisioned;
let silent: Awaited<ReturnType<typeof silentServer>> | undefined;
let silentUrl: string;
let deadUrl: string;
const u = { agi: nextIds(), lua: nextIds() };

async function cdr(callId: string) {
  const res = await http(base, tenant.adminKey, 'GET', '/v1/cdrs?limit=500');
  return res.json.items.find((c: { callId: string }) => c.callId === callId);
}

async function balance(identifiant: string): Promise<string> {
  return (await http(base, tenant.adminKey, 'GET', `/v1/users/${tenant.users.get(identifiant)}`)).json.balance;
}

/** Runs a program with stdin/stdout wired to `onLine` (its answer, if any, is written back). */
function converse(cmd: string, args: string[], env: Record<string, string>, first: string, onLine: (line: string) => string | undefined) {
  return new Promise<{ code: number | null; stderr: string; lines: string[] }>((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let buf = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        const answer = onLine(line);
        if (answer !== undefined && child.stdin.writable) child.stdin.write(answer);
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.write(first);
    child.on('exit', (code) => resolve({ code, stderr, lines }));
  });
}

/**
 * What Asterisk does with an AGI: the agi_* header, a blank line, then one
 * answer per command. `channel` holds the channel's variables (GET/SET VARIABLE).
 */
async function agi(args: string[], channel: Record<string, string>, env: Record<string, string>, o: { hangupFirst?: boolean } = {}) {
  const header =
    [
      'agi_request: forfait-authorize',
      'agi_channel: PJSIP/phone-00000001',
      `agi_uniqueid: ${channel.UNIQUEID ?? ''}`,
      `agi_accountcode: ${channel.ACCOUNTCODE ?? ''}`,
      `agi_extension: ${channel.EXTEN ?? 'h'}`,
      ...args.map((a, i) => `agi_arg_${i + 1}: ${a}`),
    ].join('\n') + '\n\n';
  let hungUp = false;
  const run = await converse(AGI, [], env, header, (line) => {
    // the channel hung up while the AGI ran: Asterisk says so before answering
    const prefix = o.hangupFirst && !hungUp ? 'HANGUP\n' : '';
    if (prefix) hungUp = true;
    const get = line.match(/^GET VARIABLE (\S+)$/);
    if (get) return prefix + (channel[get[1]!] !== undefined ? `200 result=1 (${channel[get[1]!]})\n` : '200 result=0\n');
    const set = line.match(/^SET VARIABLE (\S+) "(.*)"$/);
    if (set) {
      channel[set[1]!] = set[2]!.replace(/\\(.)/g, '$1');
      return prefix + '200 result=1\n';
    }
    if (line.startsWith('VERBOSE ')) return prefix + '200 result=1\n';
    return '510 Invalid or unknown command\n';
  });
  expect(run.code, run.stderr).toBe(0);
  return channel;
}

/** The Lua script in the stub; returns what it did, and the session's variables as it left them. */
async function lua(args: string[], session: Record<string, string> | undefined, globals: Record<string, string>) {
  const varsFile = path.join(dir, `vars-${Math.random().toString(36).slice(2)}`);
  const lines = [
    ...Object.entries(session ?? {}).map(([k, v]) => `session ${k} ${v}`),
    ...Object.entries(globals).map(([k, v]) => `global ${k} ${v}`),
  ];
  await writeFile(varsFile, lines.join('\n') + '\n');
  const run = await converse('lua5.4', [STUB, LUA, ...args], { STUB_VARS: varsFile }, '', () => undefined);
  expect(run.code, run.stderr + run.lines.join('\n')).toBe(0);
  const set: Record<string, string> = {};
  for (const l of run.lines) {
    const m = l.match(/^SET ([^=]+)=(.*)$/);
    if (m) set[m[1]!] = m[2]!;
  }
  return { lines: run.lines, set };
}

describe.skipIf(skip)('the AGI program and the Lua script against a running Forfait', () => {
  beforeAll(async () => {
    if (missing.length) throw new Error(`CI must have ${missing.join(', ')}: .ci/run installs them`);
    dir = await mkdtemp(path.join(tmpdir(), 'forfait-scripts-'));
    const started = await startServerIn(dir);
    server = started.server;
    base = started.base;
    const resellerKey = started.resellerKey;
    tenant = await provision(base, resellerKey, {
      name: uniqueName('scripts'),
      tariffId: uniqueName('tariff'),
      tariffCsv: TARIFF,
      users: [
        { ...u.agi, balance: '1', numbers: { 1: MOBILE } },
        { ...u.lua, balance: '1', numbers: { 1: MOBILE } },
      ],
    });
    silent = await silentServer();
    silentUrl = silent.url;
    deadUrl = `http://127.0.0.1:${await freePort()}`;
  }, 180_000);

  afterAll(async () => {
    silent?.close();
    if (server) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  describe('Asterisk: AGI(forfait-authorize) and AGI(forfait-authorize,end)', () => {
    const env = () => ({ FORFAIT_CONFIG: '/nonexistent', FORFAIT_URL: base, FORFAIT_URL_2: '', FORFAIT_KEY: tenant.pbxKey, FORFAIT_TIMEOUT: '1', FORFAIT_SPOOL: path.join(dir, 'agi-spool') });

    it('sets FORFAIT_MAX for Dial’s L(), and the h extension’s end charges the seconds Dial reports', async () => {
      const ch = await agi([], { UNIQUEID: '1700000000.1', ACCOUNTCODE: u.agi.identifiant, EXTEN: '0612345678' }, env());
      // balance 1 at 0.01 per second: 100 s
      expect(ch).toMatchObject({ FORFAIT_DECISION: 'allow', FORFAIT_REASON: '', FORFAIT_MAX: '100', FORFAIT_MAX_MS: '100000', FORFAIT_CALLEE: MOBILE });
      expect(ch.FORFAIT_RESERVATION).toMatch(/^[0-9a-f-]{36}$/);
      // Dial(…,L(100000)) ran; the call lasted 42.5 s; the h extension runs on a dead channel
      Object.assign(ch, { DIALSTATUS: 'ANSWER', ANSWEREDTIME_MS: '42500', ANSWEREDTIME: '42' });
      await agi(['end'], ch, env(), { hangupFirst: true });
      expect(ch.FORFAIT_ENDED).toBe('200');
      expect(await cdr('1700000000.1')).toMatchObject({ durationSeconds: 43, cost: '0.4300', disposition: 'answered', identifiant: u.agi.identifiant });
      expect(await balance(u.agi.identifiant)).toBe('0.5700');
    });

    it('denies with the reason, dials speed-dial keys as their number, reports unanswered calls', async () => {
      expect(await agi([], { UNIQUEID: '1700000000.2', ACCOUNTCODE: u.agi.identifiant, EXTEN: '0699999999' }, env())).toMatchObject({
        FORFAIT_DECISION: 'deny',
        FORFAIT_REASON: 'NUMBER_NOT_AUTHORIZED',
        FORFAIT_RESERVATION: '',
      });
      expect(await agi([], { UNIQUEID: '1700000000.3', ACCOUNTCODE: '9999999', EXTEN: '0612345678' }, env())).toMatchObject({ FORFAIT_DECISION: 'deny', FORFAIT_REASON: 'UNKNOWN_USER' });
      expect(await agi([], { UNIQUEID: '1700000000.4', ACCOUNTCODE: u.agi.identifiant, EXTEN: '*7' }, env())).toMatchObject({ FORFAIT_DECISION: 'deny', FORFAIT_REASON: 'EMPTY_KEY' });
      const ch = await agi([], { UNIQUEID: '1700000000.5', ACCOUNTCODE: u.agi.identifiant, EXTEN: '*1' }, env());
      expect(ch).toMatchObject({ FORFAIT_DECISION: 'allow', FORFAIT_CALLEE: MOBILE, FORFAIT_MAX: '57' });
      Object.assign(ch, { DIALSTATUS: 'NOANSWER', ANSWEREDTIME: '0' });
      await agi(['end'], ch, env());
      expect(await cdr('1700000000.5')).toMatchObject({ durationSeconds: 0, cost: '0.0000', disposition: 'no_answer' });
    });

    it('fails over to FORFAIT_URL_2, lets emergency numbers through when no Forfait answers, and spools an end until one does', async () => {
      const failover = { ...env(), FORFAIT_URL: silentUrl, FORFAIT_URL_2: base };
      const ch = await agi([], { UNIQUEID: '1700000000.6', ACCOUNTCODE: u.agi.identifiant, EXTEN: '0612345678' }, failover);
      expect(ch).toMatchObject({ FORFAIT_DECISION: 'allow', FORFAIT_MAX: '57' });

      const down = { ...env(), FORFAIT_URL: silentUrl, FORFAIT_URL_2: deadUrl, FORFAIT_UNREACHABLE: 'free' };
      expect(await agi([], { UNIQUEID: '1700000000.7', ACCOUNTCODE: u.agi.identifiant, EXTEN: '112' }, down)).toMatchObject({ FORFAIT_DECISION: 'allow', FORFAIT_RESERVATION: '', FORFAIT_MAX: '14400' });
      expect(await agi([], { UNIQUEID: '1700000000.8', ACCOUNTCODE: u.agi.identifiant, EXTEN: '0612345678' }, down)).toMatchObject({ FORFAIT_DECISION: 'unavailable', FORFAIT_REASON: 'FORFAIT_UNREACHABLE' });

      // the call of .6 ends while Forfait is down: its end waits in the spool…
      Object.assign(ch, { DIALSTATUS: 'ANSWER', ANSWEREDTIME_MS: '9400' });
      await agi(['end'], ch, down);
      expect(ch.FORFAIT_ENDED).toBeUndefined();
      expect(await readFile(path.join(dir, 'agi-spool', 'ends.ndjson'), 'utf8')).toContain(ch.FORFAIT_RESERVATION);
      expect(await cdr('1700000000.6')).toBeUndefined();
      // …and the next end that gets through delivers it (the held 0.57 is still held: money for the next call)
      await http(base, tenant.adminKey, 'POST', `/v1/users/${tenant.users.get(u.agi.identifiant)}/ledger`, { kind: 'topup', amount: '1', idempotencyKey: 'agi-2' });
      const next = await agi([], { UNIQUEID: '1700000000.9', ACCOUNTCODE: u.agi.identifiant, EXTEN: '0612345678' }, env());
      Object.assign(next, { DIALSTATUS: 'BUSY' });
      await agi(['end'], next, env());
      expect(await cdr('1700000000.9')).toMatchObject({ disposition: 'busy', durationSeconds: 0 });
      expect(await cdr('1700000000.6')).toMatchObject({ durationSeconds: 9, cost: '0.0900' });
      expect(await readFile(path.join(dir, 'agi-spool', 'ends.ndjson'), 'utf8')).toBe('');
    });
  });

  describe('FreeSWITCH: forfait.lua (mod_lua, mod_curl)', () => {
    const globals = () => ({ forfait_url: base, forfait_key: tenant.pbxKey, forfait_timeout: '1', forfait_spool: path.join(dir, 'fs-spool.ndjson') });
    const channel = (uuid: string, dialled: string, identifiant = u.lua.identifiant) => ({ uuid, accountcode: identifiant, destination_number: dialled });

    /** What FreeSWITCH does at hangup: expands the hook's variables and runs it as an API command. */
    async function hangup(hook: string, vars: Record<string, string>, g: Record<string, string>) {
      const expanded = hook.replace(/\$\{(\w+)\}/g, (_, name: string) => vars[name] ?? '');
      const [command, script, ...args] = expanded.split(' ');
      expect([command, script]).toEqual(['lua', 'forfait.lua']);
      return lua(args, undefined, g);
    }

    it('schedules the hangup at maxSeconds from the answer and reports the end from api_hangup_hook', async () => {
      const { set } = await lua([], channel('fs-uuid-1', '0612345678'), globals());
      expect(set).toMatchObject({ forfait_max: '100', forfait_callee: MOBILE, execute_on_answer_forfait: 'sched_hangup +100 allotted_timeout' });
      expect(set.api_hangup_hook).toBe(`lua forfait.lua end fs-uuid-1 ${set.forfait_reservation} \${billmsec} \${hangup_cause}`);
      // cut by sched_hangup at 100 s
      await hangup(set.api_hangup_hook!, { billmsec: '100000', hangup_cause: 'ALLOTTED_TIMEOUT' }, globals());
      expect(await cdr('fs-uuid-1')).toMatchObject({ durationSeconds: 100, cost: '1.0000', disposition: 'answered', identifiant: u.lua.identifiant });
      expect(await balance(u.lua.identifiant)).toBe('0.0000');
      // no money left: the next call is refused with the reason
      const denied = await lua([], channel('fs-uuid-2', '0612345678'), globals());
      expect(denied.lines).toEqual(expect.arrayContaining(['EXEC respond 403 INSUFFICIENT_BALANCE', 'HANGUP CALL_REJECTED']));
      expect(denied.set['sip_rh_X-Forfait-Reason']).toBe('INSUFFICIENT_BALANCE');
    });

    it('refuses 403 with each reason, and 503 or lets emergency numbers through when no Forfait answers', async () => {
      await http(base, tenant.adminKey, 'POST', `/v1/users/${tenant.users.get(u.lua.identifiant)}/ledger`, { kind: 'topup', amount: '1', idempotencyKey: 'lua-2' });
      for (const [dialled, identifiant, reason] of [
        ['0699999999', u.lua.identifiant, 'NUMBER_NOT_AUTHORIZED'],
        ['0612345678', '9999999', 'UNKNOWN_USER'],
        ['*7', u.lua.identifiant, 'EMPTY_KEY'],
      ] as const) {
        const r = await lua([], channel(`fs-deny-${reason}`, dialled, identifiant), globals());
        expect(r.lines, reason).toEqual(expect.arrayContaining([`EXEC respond 403 ${reason}`, 'HANGUP CALL_REJECTED']));
        expect(r.set.api_hangup_hook).toBeUndefined();
      }
      // speed dial, through the second URL
      const viaSecond = await lua([], channel('fs-uuid-3', '*1'), { ...globals(), forfait_url: silentUrl, forfait_url_2: base });
      expect(viaSecond.set).toMatchObject({ forfait_callee: MOBILE, forfait_max: '100' });
      await hangup(viaSecond.set.api_hangup_hook!, { billmsec: '0', hangup_cause: 'NO_ANSWER' }, globals());
      expect(await cdr('fs-uuid-3')).toMatchObject({ durationSeconds: 0, disposition: 'no_answer' });

      const down = { ...globals(), forfait_url: silentUrl, forfait_url_2: deadUrl, forfait_unreachable: 'free' };
      const sos = await lua([], channel('fs-uuid-4', '112'), down);
      expect(sos.set).toMatchObject({ forfait_callee: '112', execute_on_answer_forfait: 'sched_hangup +14400 allotted_timeout' });
      expect(sos.lines.some((l) => l.startsWith('EXEC respond'))).toBe(false);
      const refused = await lua([], channel('fs-uuid-5', '0612345678'), down);
      expect(refused.lines).toEqual(expect.arrayContaining(['EXEC respond 503 Forfait unreachable']));
    });

    it('keeps an end no Forfait takes and delivers it with the next one', async () => {
      const first = await lua([], channel('fs-uuid-6', '0612345678'), globals());
      expect(first.set.api_hangup_hook, first.lines.join('\n')).toBeDefined();
      const down = { ...globals(), forfait_url: deadUrl };
      await hangup(first.set.api_hangup_hook!, { billmsec: '2500', hangup_cause: 'NORMAL_CLEARING' }, down);
      expect(await cdr('fs-uuid-6')).toBeUndefined();
      // its 1.00 is still held until its end arrives: money for the next call
      await http(base, tenant.adminKey, 'POST', `/v1/users/${tenant.users.get(u.lua.identifiant)}/ledger`, { kind: 'topup', amount: '1', idempotencyKey: 'lua-3' });
      const second = await lua([], channel('fs-uuid-7', '0612345678'), globals());
      expect(second.set.api_hangup_hook, second.lines.join('\n')).toBeDefined();
      await hangup(second.set.api_hangup_hook!, { billmsec: '1499', hangup_cause: 'NORMAL_CLEARING' }, globals());
      expect(await cdr('fs-uuid-7')).toMatchObject({ durationSeconds: 1 });
      expect(await cdr('fs-uuid-6')).toMatchObject({ durationSeconds: 3, disposition: 'answered' });
      expect(await readFile(path.join(dir, 'fs-spool.ndjson'), 'utf8')).toBe('');
    });
  });
});
