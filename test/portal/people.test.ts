import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../api/app.js';
import { defaultConfig } from '../../api/context.js';
import { redeemToken, requestReset } from '../../services/people/people.js';
import { addressFailures, lockAfterFailures, lockMinutes, signIn } from '../../services/people/sessions.js';
import { createMailer } from '../../services/mail/mailer.js';
import { call, testApp, testDb } from '../support/app.js';
import { keyWithRoles, newTenant, resellerKey, uniqueName, type TenantFixture } from '../support/factory.js';
import { linkIn, startSmtp, tokenOf } from '../support/smtp.js';
import pino from 'pino';

let smtp: Awaited<ReturnType<typeof startSmtp>>;
let app: App;
let t: TenantFixture;
let other: TenantFixture;
const { db } = testDb();
const t0 = new Date('2026-11-10T09:00:00Z');
const minutes = (n: number) => new Date(t0.getTime() + n * 60_000);

beforeAll(async () => {
  smtp = await startSmtp();
  app = testApp({ portal: { mail: { smtpUrl: smtp.url, from: 'Forfait <noreply@forfait.test>', outboxDir: '/nonexistent' }, publicUrl: 'https://portal.example.test' } });
  t = await newTenant(app);
  other = await newTenant(app);
});
afterAll(async () => {
  await app.close();
  await smtp.close();
});

const email = () => `${uniqueName('p').toLowerCase()}@example.test`;

/** A person of tenant `tt` invited by its admin key, who accepts with `password`; answers its id. */
async function invitedAndAccepted(tt: TenantFixture, roles: string[], password: string) {
  const address = email();
  const caught = smtp.next(address);
  const res = await call(app, 'POST', '/v1/people', { key: tt.adminKey, json: { email: address, name: 'Ana Lima', roles, locale: 'en' } });
  expect(res.status, res.text).toBe(201);
  const mail = await caught;
  const accepted = await redeemToken(db, 'invitation', tokenOf(linkIn(mail)), password, t0);
  expect(accepted?.status).toBe('active');
  return { id: res.json.person.id as string, email: address, mail };
}

async function session(address: string, password: string, now = t0) {
  const r = await signIn(db, { email: address, password, address: '192.0.2.1' }, now);
  if (!r.ok) throw new Error(`sign-in refused: ${r.reason}`);
  return r;
}

describe('people: invitation, generated password, CSV', () => {
  it('invites by mail through SMTP (a link to the public URL, in the person’s language); the link works once', async () => {
    const p = await invitedAndAccepted(t, ['comptable'], 'correct horse battery');
    expect(p.mail.raw).toMatch(/Subject: Your access to the Forfait portal/);
    expect(linkIn(p.mail)).toMatch(/^https:\/\/portal\.example\.test\/portal\/accept\?token=/);
    // used once: the same link again is refused
    expect(await redeemToken(db, 'invitation', tokenOf(linkIn(p.mail)), 'another password 1', t0)).toBeUndefined();
    const s = await session(p.email, 'correct horse battery');
    expect(s.person.id).toBe(p.id);
  });

  it('an invitation expires after 72 hours', async () => {
    const address = email();
    const caught = smtp.next(address);
    await call(app, 'POST', '/v1/people', { key: t.adminKey, json: { email: address, name: 'Late', roles: ['acheteur'] } });
    const token = tokenOf(linkIn(await caught));
    const row = await db.selectFrom('personTokens').select('expiresAt').where('usedAt', 'is', null).orderBy('createdAt', 'desc').executeTakeFirstOrThrow();
    expect(await redeemToken(db, 'invitation', token, 'long enough password', new Date(row.expiresAt.getTime() + 1000))).toBeUndefined();
  });

  it('a generated password is answered once and signs in; it is stored only as an argon2id hash', async () => {
    const address = email();
    const res = await call(app, 'POST', '/v1/people', { key: t.adminKey, json: { email: address, name: 'Gen', roles: ['technicien'], delivery: 'password' } });
    expect(res.status, res.text).toBe(201);
    expect(res.json.person.status).toBe('active');
    expect(res.json.password).toMatch(/^[A-Za-z2-9]{16}$/);
    const row = await db.selectFrom('people').select('passwordHash').where('email', '=', address).executeTakeFirstOrThrow();
    expect(row.passwordHash).toMatch(/^\$argon2id\$/);
    expect(row.passwordHash).not.toContain(res.json.password);
    await session(address, res.json.password);
  });

  it('refuses roles beyond the creator’s, unknown roles and a taken email, naming the field', async () => {
    const limited = await keyWithRoles(app, t, ['technicien']);
    const r1 = await call(app, 'POST', '/v1/people', { key: limited.key, json: { email: email(), name: 'X', roles: ['comptable'] } });
    expect(r1.status).toBe(403); // technicien lacks access:manage altogether
    const r2 = await call(app, 'POST', '/v1/people', { key: t.adminKey, json: { email: email(), name: 'X', roles: ['nope'] } });
    expect(r2.status).toBe(400);
    expect(r2.json.error.details).toEqual([{ field: 'roles', value: 'nope', message: 'unknown role nope' }]);
    const address = email();
    await call(app, 'POST', '/v1/people', { key: t.adminKey, json: { email: address, name: 'X', roles: ['acheteur'], delivery: 'password' } });
    const r3 = await call(app, 'POST', '/v1/people', { key: t.adminKey, json: { email: address.toUpperCase(), name: 'Y', roles: ['acheteur'], delivery: 'password' } });
    expect(r3.status).toBe(409);
    expect(r3.json.error.details[0].field).toBe('email');
  });

  it('a CSV of people: every bad line named and nothing written; a good file invites each', async () => {
    const a = email();
    const b = email();
    const bad = `email,name,roles\n${a},Alice,comptable\nnot-an-email,Bob,acheteur\n${a},Twice,acheteur\n${b},Carl,ghost\n`;
    const before = await db.selectFrom('people').select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow();
    const r = await call(app, 'POST', '/v1/people/import', { key: t.adminKey, body: bad, headers: { 'content-type': 'text/csv' } });
    expect(r.status).toBe(400);
    expect(r.json.error.details.map((d: { line: number; field: string }) => [d.line, d.field])).toEqual([
      [3, 'email'],
      [4, 'email'],
      [5, 'roles'],
    ]);
    const after = await db.selectFrom('people').select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);

    const ca = smtp.next(a);
    const cb = smtp.next(b);
    const ok = await call(app, 'POST', '/v1/people/import', { key: t.adminKey, body: `${a},Alice,comptable\n${b},Bob,acheteur|technicien,en\n`, headers: { 'content-type': 'text/csv' } });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.json.created.map((p: { email: string; roles: string[]; locale: string }) => [p.email, p.roles, p.locale])).toEqual([
      [a, ['comptable'], 'fr'],
      [b, ['acheteur', 'technicien'], 'en'],
    ]);
    expect((await ca).raw).toMatch(/Subject: =\?UTF-8\?|Subject: Votre acc/);
    expect((await cb).raw).toMatch(/Subject: Your access/);
  });

  it('the people as a CSV the import reads back, formulas guarded, only the caller’s tenant', async () => {
    const address = email();
    await call(app, 'POST', '/v1/people', { key: t.adminKey, json: { email: address, name: '=HYPERLINK("x")', roles: ['comptable', 'acheteur'], locale: 'en', delivery: 'password' } });
    const csv = await call(app, 'GET', '/v1/people/export.csv', { key: t.adminKey });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = csv.text.split('\r\n');
    expect(lines[0]).toBe('email,name,roles,locale');
    expect(lines).toContain(`${address},"'=HYPERLINK(""x"")","comptable|acheteur",en`);
    expect((await call(app, 'GET', '/v1/people/export.csv', { key: other.adminKey })).text).not.toContain(address);
  });

  it('a reseller invites a tenant’s first administrateur; another reseller’s tenant is a 404', async () => {
    const address = email();
    const caught = smtp.next(address);
    const r = await call(app, 'POST', '/v1/people', { key: t.resellerKey, json: { email: address, name: 'Admin', roles: ['administrateur'], tenantId: t.id } });
    expect(r.status, r.text).toBe(201);
    expect(r.json.person.tenantId).toBe(t.id);
    await caught;
    const stranger = await resellerKey({ newReseller: true });
    const r2 = await call(app, 'POST', '/v1/people', { key: stranger.key, json: { email: email(), name: 'X', roles: ['administrateur'], tenantId: t.id } });
    expect(r2.status).toBe(404);
    const r3 = await call(app, 'GET', `/v1/people?tenantId=${t.id}`, { key: stranger.key });
    expect(r3.status).toBe(404);
  });
});

describe('sessions: the API as the signed-in person, CSRF, throttling', () => {
  it('a session cookie reads with the person’s roles; a change needs the CSRF token', async () => {
    const p = await invitedAndAccepted(t, ['technicien'], 'technicien password');
    const s = await session(p.email, 'technicien password', new Date());
    const cookie = `forfait_session=${s.token}`;
    const list = await call(app, 'GET', '/v1/users', { headers: { cookie } });
    expect(list.status, list.text).toBe(200);
    // technicien may not read invoices: the same 403 a key gets
    expect((await call(app, 'GET', '/v1/invoices', { headers: { cookie } })).status).toBe(403);
    const user = { fullName: 'Zoé', matricule: `2026${Date.now().toString().slice(-10)}`, identifiant: String(1_000_000 + Math.floor(Math.random() * 8_000_000)) };
    const noCsrf = await call(app, 'POST', '/v1/users', { headers: { cookie }, json: user });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.json.error.message).toMatch(/CSRF/);
    const wrong = await call(app, 'POST', '/v1/users', { headers: { cookie, 'x-csrf-token': `${s.csrf.slice(0, -1)}x` }, json: user });
    expect(wrong.status).toBe(403);
    const ok = await call(app, 'POST', '/v1/users', { headers: { cookie, 'x-csrf-token': s.csrf }, json: user });
    expect(ok.status, ok.text).toBe(201);
    // another tenant's user through the session: 404
    const theirs = await call(app, 'POST', '/v1/users', {
      key: other.adminKey,
      json: { fullName: 'Other', matricule: `2027${Date.now().toString().slice(-10)}`, identifiant: '7654321' },
    });
    expect((await call(app, 'GET', `/v1/users/${theirs.json.id}`, { headers: { cookie } })).status).toBe(404);
    // the change is in the audit trail as the person's
    const audit = await call(app, 'GET', '/v1/audit?action=user.create', { key: t.adminKey });
    expect(audit.status, audit.text).toBe(200);
    expect(audit.json.items[0]).toMatchObject({ actor: { kind: 'person', id: p.id, label: p.email }, targetId: ok.json.id });
    expect(audit.json.items[0].after.matricule).toBe(user.matricule);
  });

  it('disabling a person ends its sessions at once and refuses its sign-in', async () => {
    const p = await invitedAndAccepted(t, ['comptable'], 'comptable password');
    const s = await session(p.email, 'comptable password', new Date());
    const cookie = `forfait_session=${s.token}`;
    expect((await call(app, 'GET', '/v1/invoices', { headers: { cookie } })).status).toBe(200);
    const off = await call(app, 'PATCH', `/v1/people/${p.id}`, { key: t.adminKey, json: { status: 'disabled' } });
    expect(off.status, off.text).toBe(200);
    expect((await call(app, 'GET', '/v1/invoices', { headers: { cookie } })).status).toBe(401);
    expect(await signIn(db, { email: p.email, password: 'comptable password', address: '192.0.2.9' }, new Date())).toEqual({ ok: false, reason: 'invalid' });
    // another tenant's admin cannot see or change it
    expect((await call(app, 'PATCH', `/v1/people/${p.id}`, { key: other.adminKey, json: { status: 'active' } })).status).toBe(404);
    const events = await call(app, 'GET', `/v1/audit?targetId=${p.id}`, { key: t.adminKey });
    expect(events.json.items.map((e: { action: string }) => e.action)).toEqual(['person.update', 'person.accept', 'person.create']);
    expect(events.json.items[0].before.status).toBe('active');
    expect(events.json.items[0].after.status).toBe('disabled');
    expect((await call(app, 'GET', `/v1/audit?targetId=${p.id}`, { key: other.adminKey })).json.items).toEqual([]);
  });

  it(`${lockAfterFailures} wrong passwords lock the account for ${lockMinutes} minutes, even against the right one`, async () => {
    const p = await invitedAndAccepted(t, ['acheteur'], 'the right password');
    for (let i = 1; i < lockAfterFailures; i++) {
      expect(await signIn(db, { email: p.email, password: `wrong ${i}`, address: `198.51.100.${i}` }, minutes(i))).toEqual({ ok: false, reason: 'invalid' });
    }
    expect(await signIn(db, { email: p.email, password: 'wrong 5', address: '198.51.100.5' }, minutes(5))).toEqual({ ok: false, reason: 'locked' });
    expect(await signIn(db, { email: p.email, password: 'the right password', address: '198.51.100.6' }, minutes(6))).toEqual({ ok: false, reason: 'locked' });
    const later = await signIn(db, { email: p.email, password: 'the right password', address: '198.51.100.6' }, minutes(5 + lockMinutes + 1));
    expect(later.ok).toBe(true);
    const lock = await call(app, 'GET', `/v1/audit?targetId=${p.id}&action=person.lock`, { key: t.adminKey });
    expect(lock.json.items).toHaveLength(1);
  });

  it(`${addressFailures} failures from one address in 15 minutes throttle that address, whatever the account`, async () => {
    const p = await invitedAndAccepted(t, ['acheteur'], 'address password');
    const address = `203.0.113.${Math.floor(Math.random() * 250)}`;
    for (let i = 0; i < addressFailures; i++) {
      const r = await signIn(db, { email: `nobody${i}@example.test`, password: 'x', address }, minutes(100 + i * 0.1));
      expect(r).toEqual({ ok: false, reason: 'invalid' });
    }
    expect(await signIn(db, { email: p.email, password: 'address password', address }, minutes(103))).toEqual({ ok: false, reason: 'throttled' });
    // another address is not affected; this one again once the failures age out
    expect((await signIn(db, { email: p.email, password: 'address password', address: '203.0.113.251' }, minutes(103))).ok).toBe(true);
    expect((await signIn(db, { email: p.email, password: 'address password', address }, minutes(120))).ok).toBe(true);
  });

  it('a reset link by mail sets a new password and signs out the old sessions; unknown addresses get the same silence', async () => {
    const p = await invitedAndAccepted(t, ['acheteur'], 'before the reset');
    const old = await session(p.email, 'before the reset', new Date());
    const ctx = { mailer: createMailer({ smtpUrl: smtp.url, from: 'f@forfait.test', outboxDir: '/nonexistent' }, pino({ level: 'silent' })), linkBase: 'https://portal.example.test', now: new Date() };
    const caught = smtp.next(p.email);
    await requestReset(db, p.email.toUpperCase(), ctx);
    const sent = smtp.mails.length;
    await requestReset(db, 'nobody-at-all@example.test', ctx);
    expect(smtp.mails.length).toBe(sent);
    const link = linkIn(await caught);
    expect(link).toMatch(/\/portal\/reset\?token=/);
    expect(await redeemToken(db, 'reset', tokenOf(link), 'short', new Date()).catch((e: Error) => e.message)).toMatch(/12 to 200/);
    expect((await redeemToken(db, 'reset', tokenOf(link), 'after the reset!', new Date()))?.id).toBe(p.id);
    expect((await call(app, 'GET', '/v1/users', { headers: { cookie: `forfait_session=${old.token}` } })).status).toBe(401);
    await session(p.email, 'after the reset!', new Date());
    ctx.mailer.close();
  });
});

describe('mail without SMTP, the audit trail', () => {
  it('without FORFAIT_SMTP_URL an invitation is an .eml file in the outbox', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'forfait-outbox-'));
    const local = testApp({ portal: { mail: { ...defaultConfig.portal.mail, outboxDir: dir } } });
    try {
      const address = email();
      const r = await call(local, 'POST', '/v1/people', { key: t.adminKey, json: { email: address, name: 'Out Box', roles: ['acheteur'] } });
      expect(r.status, r.text).toBe(201);
      const files = await readdir(dir);
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/\.eml$/);
      const eml = await readFile(path.join(dir, files[0]!), 'utf8');
      expect(eml).toContain(`To: ${address}`);
      expect(linkIn({ to: [address], raw: eml })).toMatch(/^http:\/\/localhost\/portal\/accept\?token=/);
    } finally {
      await local.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a reseller’s changes to a tenant are in the trail it reads; the tenant reads them too, another reseller gets a 404', async () => {
    const patch = await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { notes: 'called on Monday' } });
    expect(patch.status, patch.text).toBe(200);
    const mine = await call(app, 'GET', `/v1/audit?tenantId=${t.id}&action=tenant.update`, { key: t.resellerKey });
    expect(mine.status, mine.text).toBe(200);
    expect(mine.json.items[0]).toMatchObject({ actor: { kind: 'key' }, targetId: t.id, after: { notes: 'called on Monday' } });
    expect(mine.json.items[0].before.notes).toBeNull();
    expect((await call(app, 'GET', '/v1/audit?action=tenant.update', { key: t.adminKey })).json.items[0].targetId).toBe(t.id);
    const stranger = await resellerKey({ newReseller: true });
    expect((await call(app, 'GET', `/v1/audit?tenantId=${t.id}`, { key: stranger.key })).status).toBe(404);
  });

  it('keys and roles made by a key are audited; the trail cannot be changed or deleted', async () => {
    const k = await keyWithRoles(app, t, ['comptable']);
    const revoke = await call(app, 'DELETE', `/v1/keys/${k.id}`, { key: t.adminKey });
    expect(revoke.status).toBe(200);
    const events = await call(app, 'GET', `/v1/audit?targetId=${k.id}`, { key: t.adminKey });
    expect(events.json.items.map((e: { action: string }) => e.action)).toEqual(['key.revoke', 'key.create']);
    expect(events.json.items[1]).toMatchObject({ actor: { kind: 'key' }, after: { principal: 'user', roles: ['comptable'] } });
    expect(events.json.items[0].before.revokedAt).toBeNull();
    expect(events.json.items[0].after.revokedAt).not.toBeNull();
    expect(JSON.stringify(events.json)).not.toMatch(/ffk_/);
    await expect(sql`UPDATE audit_events SET action = 'x' WHERE target_id = ${k.id}`.execute(db)).rejects.toThrow(/append-only/);
    await expect(sql`DELETE FROM audit_events WHERE target_id = ${k.id}`.execute(db)).rejects.toThrow(/append-only/);
    // a key without access:manage may not read it
    expect((await call(app, 'GET', '/v1/audit', { key: (await keyWithRoles(app, t, ['comptable'])).key })).status).toBe(403);
  });
});
