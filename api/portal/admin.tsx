import type { Hono } from 'hono';
import { defaultRoleNames, permissions, type KeyView, type RoleView } from '../../services/access/access.js';
import type { AuditView } from '../../services/audit/audit.js';
import type { PersonView } from '../../services/people/people.js';
import type { LicenceUse } from '../../services/tenants/licences.js';
import type { TenantView } from '../../services/tenants/tenants.js';
import type { ApiFailure } from './client.js';
import { apiOf, formOf, licenceOf, type PortalContext, type PortalDeps, type PortalEnv } from './env.js';
import { Csrf, Field, Layout, when, type Viewer } from './layout.js';
import { say, type LabelKey } from './labels.js';
import { refused, statusOf, Submit, Table, tr, type List, type PageStatus } from './page.js';


interface Extra {
  error?: ApiFailure;
  notice?: string;
  status?: PageStatus;
  /** A secret to show once (a new key, a generated password). */
  secret?: { label: string; value: string };
}

const rolesOf = (all: Record<string, string[]>) => (all.roles ?? []).map((r) => r.trim()).filter(Boolean);

const statusLabel: Record<PersonView['status'], LabelKey> = { invited: 'statusInvited', active: 'statusActive', disabled: 'statusDisabled' };

/** The people table with their actions, and the invite forms: the same for a tenant's administrator and a reseller. */
function PeopleSection(p: { c: PortalContext; people: PersonView[]; roles: string[]; tenantId?: string; back: string }) {
  const t = tr(p.c);
  const v = p.c.get('viewer');
  const hidden = (
    <>
      <Csrf viewer={v} />
      <input type="hidden" name="back" value={p.back} />
      {p.tenantId ? <input type="hidden" name="tenantId" value={p.tenantId} /> : null}
    </>
  );
  return (
    <section aria-labelledby="people-title">
      <h2 id="people-title">{t('people')}</h2>
      <Table class="list" head={[t('name'), t('email'), t('roles'), t('status'), t('actions')]}>
            {p.people.map((person) => (
              <tr>
                <td>{person.name}</td>
                <td>{person.email}</td>
                <td>
                  {p.roles.length && person.tenantId ? (
                    <form method="post" action={`/portal/admin/people/${person.id}`} class="inline roles-form">
                      {hidden}
                      <fieldset class="chips">
                        <legend class="sr-only">
                          {t('roles')} — {person.email}
                        </legend>
                        {p.roles.map((r) => (
                          <label>
                            <input type="checkbox" name="roles" value={r} checked={person.roles.includes(r)} /> {r}
                          </label>
                        ))}
                      </fieldset>
                      <button type="submit" class="secondary small">
                        {t('save')}
                      </button>
                    </form>
                  ) : (
                    person.roles.join(', ')
                  )}
                </td>
                <td>
                  {t(statusLabel[person.status])}
                  {person.locked ? ` · ${t('lockedBadge')}` : ''}
                </td>
                <td class="links">
                  <form method="post" action={`/portal/admin/people/${person.id}`} class="inline">
                    {hidden}
                    <input type="hidden" name="status" value={person.status === 'disabled' || person.locked ? 'active' : 'disabled'} />
                    <button type="submit" class="secondary small">
                      {person.status === 'disabled' || person.locked ? t('enable') : t('disable')}
                    </button>
                  </form>
                  {person.status !== 'disabled' ? (
                    <form method="post" action={`/portal/admin/people/${person.id}/link`} class="inline">
                      {hidden}
                      <button type="submit" class="secondary small">
                        {t('sendLink')}
                      </button>
                    </form>
                  ) : null}
                </td>
              </tr>
            ))}
          </Table>
      <h3>{t('inviteTitle')}</h3>
      <form method="post" action="/portal/admin/people" class="card form grid-form">
        {hidden}
        <Field id="p-email" label={t('email')}>
          <input id="p-email" name="email" type="email" required />
        </Field>
        <Field id="p-name" label={t('name')}>
          <input id="p-name" name="name" required maxlength={200} />
        </Field>
        <Field id="p-locale" label={t('language')}>
          <select id="p-locale" name="locale">
            <option value="fr">Français</option>
            <option value="en">English</option>
          </select>
        </Field>
        {p.roles.length ? (
          <fieldset class="chips">
            <legend>{t('roles')}</legend>
            {p.roles.map((r) => (
              <label>
                <input type="checkbox" name="roles" value={r} checked={r === 'administrateur' && !!p.tenantId && v.reseller} /> {r}
              </label>
            ))}
          </fieldset>
        ) : null}
        <fieldset class="radios">
          <legend>{t('delivery')}</legend>
          <label>
            <input type="radio" name="delivery" value="invitation" checked /> {t('byInvitation')}
          </label>
          <label>
            <input type="radio" name="delivery" value="password" /> {t('byPassword')}
          </label>
        </fieldset>
        <Submit label={t('invite')} />
      </form>
      <form method="post" action="/portal/admin/people/import" enctype="multipart/form-data" class="card form grid-form">
        {hidden}
        <Field id="p-csv" label={t('peopleCsv')}>
          <input id="p-csv" name="file" type="file" accept=".csv,text/csv" required />
        </Field>
        <div class="form-actions">
          <button type="submit" class="secondary">
            {t('upload')}
          </button>
          <a class="button secondary" href={`/v1/people/export.csv${p.tenantId ? `?tenantId=${p.tenantId}` : ''}`} download>
            {t('exportPeople')}
          </a>
        </div>
      </form>
    </section>
  );
}

function AuditSection(p: { c: PortalContext; items: AuditView[] }) {
  const t = tr(p.c);
  const locale = p.c.get('locale');
  const show = (x: unknown) => (x === null || x === undefined ? '' : JSON.stringify(x).slice(0, 300));
  return (
    <section aria-labelledby="audit-title">
      <h2 id="audit-title">{t('audit')}</h2>
      <Table class="list audit" head={[t('date'), t('by'), t('action'), t('target'), t('before'), t('after')]}>
            {p.items.map((e) => (
              <tr>
                <td>{when(locale, e.at)}</td>
                <td>{e.actor.label ?? `${e.actor.kind} ${e.actor.id}`}</td>
                <td>{e.action}</td>
                <td>{`${e.targetType} ${e.targetId ?? ''}`}</td>
                <td class="json">{show(e.before)}</td>
                <td class="json">{show(e.after)}</td>
              </tr>
            ))}
          </Table>
    </section>
  );
}

function KeysSection(p: { c: PortalContext; keys: KeyView[]; roles: string[] }) {
  const t = tr(p.c);
  const v = p.c.get('viewer');
  const locale = p.c.get('locale');
  return (
    <section aria-labelledby="keys-title">
      <h2 id="keys-title">{t('apiKeys')}</h2>
      <Table class="list" head={[t('keyName'), t('roles'), t('date'), t('actions')]}>
            {p.keys.map((k) => (
              <tr>
                <td>{k.name}</td>
                <td>{k.principal === 'pbx' ? t('pbxKey') : k.roles.join(', ')}</td>
                <td>{when(locale, k.createdAt)}</td>
                <td>
                  {k.revokedAt ? (
                    t('revoked')
                  ) : (
                    <form method="post" action={`/portal/admin/keys/${k.id}/revoke`} class="inline" data-confirm={`${t('revoke')} ${k.name} ?`}>
                      <Csrf viewer={v} />
                      <button type="submit" class="secondary small" aria-label={`${t('revoke')} ${k.name}`}>
                        {t('revoke')}
                      </button>
                    </form>
                  )}
                </td>
              </tr>
            ))}
          </Table>
      <form method="post" action="/portal/admin/keys" class="card form grid-form">
        <Csrf viewer={v} />
        <Field id="k-name" label={t('keyName')}>
          <input id="k-name" name="name" required maxlength={100} />
        </Field>
        <fieldset class="chips">
          <legend>{t('roles')}</legend>
          {p.roles.map((r) => (
            <label>
              <input type="checkbox" name="roles" value={r} /> {r}
            </label>
          ))}
          <label>
            <input type="checkbox" name="pbx" value="1" /> {t('pbxKey')}
          </label>
        </fieldset>
        <Submit label={t('createKey')} />
      </form>
    </section>
  );
}

function RolesSection(p: { c: PortalContext; roles: RoleView[] }) {
  const t = tr(p.c);
  const v = p.c.get('viewer');
  return (
    <section aria-labelledby="roles-title">
      <h2 id="roles-title">{t('customRoles')}</h2>
      <Table class="list" head={[t('roleName'), t('inherits'), t('permissions')]}>
            {p.roles.map((r) => (
              <tr>
                <td>
                  {r.name}
                  {r.builtIn ? ` (${t('builtIn')})` : ''}
                </td>
                <td>{r.inherits ?? ''}</td>
                <td class="json">{r.permissions.join(', ')}</td>
              </tr>
            ))}
          </Table>
      <form method="post" action="/portal/admin/roles" class="card form grid-form">
        <Csrf viewer={v} />
        <Field id="r-name" label={t('roleName')}>
          <input id="r-name" name="name" required maxlength={60} />
        </Field>
        <Field id="r-inherits" label={t('inherits')}>
          <select id="r-inherits" name="inherits">
            {defaultRoleNames.map((n) => (
              <option value={n}>{n}</option>
            ))}
          </select>
        </Field>
        <fieldset class="chips">
          <legend>{t('addPermissions')}</legend>
          {permissions.map((perm) => (
            <label>
              <input type="checkbox" name="add" value={perm} /> {perm}
            </label>
          ))}
        </fieldset>
        <fieldset class="chips">
          <legend>{t('removePermissions')}</legend>
          {permissions.map((perm) => (
            <label>
              <input type="checkbox" name="remove" value={perm} /> {perm}
            </label>
          ))}
        </fieldset>
        <Submit label={t('createRole')} />
      </form>
    </section>
  );
}

const Secret = (p: { secret: NonNullable<Extra['secret']> }) => (
  <div class="alert secret" role="status">
    <p>{p.secret.label}</p>
    <code data-secret>{p.secret.value}</code>
  </div>
);

export function adminPages(app: Hono<PortalEnv>, pd: PortalDeps) {
  const adminPage = async (c: PortalContext, extra: Extra = {}) => {
    const t = tr(c);
    const v: Viewer = c.get('viewer');
    const api = apiOf(pd, c);
    const people = await api.get<List<PersonView>>('/v1/people?limit=500');
    if (!people.ok) return refused(c, people.error, people.status);
    const audit = await api.get<List<AuditView>>('/v1/audit?limit=50');
    const tenantSide = !v.reseller;
    const [keys, roles, licence] = tenantSide
      ? await Promise.all([api.get<List<KeyView>>('/v1/keys?limit=500'), api.get<List<RoleView>>('/v1/roles'), licenceOf(pd, c)])
      : [undefined, undefined, undefined];
    const roleNames = roles?.ok ? roles.json.items.map((r) => r.name) : [];
    const ok = c.req.query('ok');
    return c.html(
      <Layout
        locale={c.get('locale')}
        title={t('admin')}
        viewer={v}
        current="admin"
        licence={licence}
        path="/portal/admin"
        notice={extra.notice ?? (ok === 'saved' || ok === 'linkSent' ? t(ok) : undefined)}
        error={extra.error}
      >
        {extra.secret ? <Secret secret={extra.secret} /> : null}
        {licence ? <p class="licences">{t('licences', { used: licence.used, max: licence.max })}</p> : null}
        <PeopleSection c={c} people={people.json.items} roles={roleNames} back="/portal/admin" />
        {keys?.ok ? <KeysSection c={c} keys={keys.json.items} roles={roleNames} /> : null}
        {roles?.ok ? <RolesSection c={c} roles={roles.json.items} /> : null}
        {audit.ok ? <AuditSection c={c} items={audit.json.items} /> : null}
      </Layout>,
      extra.status ?? 200,
    );
  };
  app.get('/admin', (c) => adminPage(c));

  /** Where a people form goes back to: the admin page, or a reseller's tenant page. */
  const back = async (c: PortalContext, fields: Record<string, string>, extra: Extra) => {
    const tenantId = fields.tenantId;
    if (tenantId && c.get('viewer').reseller) return tenantPage(c, tenantId, extra);
    return adminPage(c, extra);
  };

  app.post('/admin/people', async (c) => {
    const { fields, all, csrf } = await formOf(c);
    const body = {
      email: fields.email ?? '',
      name: fields.name ?? '',
      locale: fields.locale === 'en' ? 'en' : 'fr',
      delivery: fields.delivery === 'password' ? 'password' : 'invitation',
      ...(c.get('viewer').reseller ? { tenantId: fields.tenantId || null } : { roles: rolesOf(all) }),
      ...(c.get('viewer').reseller && fields.tenantId ? { roles: rolesOf(all) } : {}),
    };
    const r = await apiOf(pd, c, csrf).call<{ person: PersonView; password?: string }>('POST', '/v1/people', { json: body });
    if (!r.ok) return back(c, fields, { error: r.error, status: statusOf(r.status) });
    const locale = c.get('locale');
    return back(c, fields, {
      notice: r.json.password ? undefined : say(locale, 'invited', { email: r.json.person.email }),
      ...(r.json.password ? { secret: { label: say(locale, 'generatedPassword', { email: r.json.person.email, password: '' }).replace(/\s*:?\s*$/, ''), value: r.json.password } } : {}),
    });
  });
  app.post('/admin/people/import', async (c) => {
    const { fields, csrf } = await formOf(c);
    const q = c.get('viewer').reseller && fields.tenantId ? `?tenantId=${encodeURIComponent(fields.tenantId)}` : '';
    const r = await apiOf(pd, c, csrf).call<{ created: PersonView[] }>('POST', `/v1/people/import${q}`, { csv: fields.file ?? '' });
    if (!r.ok) return back(c, fields, { error: r.error, status: statusOf(r.status) });
    return back(c, fields, { notice: r.json.created.map((p) => say(c.get('locale'), 'invited', { email: p.email })).join(' ') });
  });
  app.post('/admin/people/:id', async (c) => {
    const { fields, all, csrf } = await formOf(c);
    const body = fields.status ? { status: fields.status } : { roles: rolesOf(all) };
    const r = await apiOf(pd, c, csrf).call('PATCH', `/v1/people/${encodeURIComponent(c.req.param('id'))}`, { json: body });
    if (!r.ok) return r.status === 404 ? refused(c, r.error, 404) : back(c, fields, { error: r.error, status: statusOf(r.status) });
    return back(c, fields, { notice: say(c.get('locale'), 'saved') });
  });
  app.post('/admin/people/:id/link', async (c) => {
    const { fields, csrf } = await formOf(c);
    const r = await apiOf(pd, c, csrf).call('POST', `/v1/people/${encodeURIComponent(c.req.param('id'))}/link`);
    if (!r.ok) return r.status === 404 ? refused(c, r.error, 404) : back(c, fields, { error: r.error, status: statusOf(r.status) });
    return back(c, fields, { notice: say(c.get('locale'), 'linkSent') });
  });

  app.post('/admin/keys', async (c) => {
    const { fields, all, csrf } = await formOf(c);
    const body = fields.pbx === '1' ? { name: fields.name ?? '', principal: 'pbx' } : { name: fields.name ?? '', roles: rolesOf(all) };
    const r = await apiOf(pd, c, csrf).call<{ id: string; key: string }>('POST', '/v1/keys', { json: body });
    if (!r.ok) return adminPage(c, { error: r.error, status: statusOf(r.status) });
    return adminPage(c, { secret: { label: say(c.get('locale'), 'keyShownOnce'), value: r.json.key } });
  });
  app.post('/admin/keys/:id/revoke', async (c) => {
    const { csrf } = await formOf(c);
    const r = await apiOf(pd, c, csrf).call('DELETE', `/v1/keys/${encodeURIComponent(c.req.param('id'))}`);
    if (!r.ok) return r.status === 404 ? refused(c, r.error, 404) : adminPage(c, { error: r.error, status: statusOf(r.status) });
    return c.redirect('/portal/admin?ok=saved', 303);
  });
  app.post('/admin/roles', async (c) => {
    const { fields, all, csrf } = await formOf(c);
    const body = { name: fields.name ?? '', inherits: fields.inherits ?? '', add: all.add ?? [], remove: all.remove ?? [] };
    const r = await apiOf(pd, c, csrf).call('POST', '/v1/roles', { json: body });
    if (!r.ok) return adminPage(c, { error: r.error, status: statusOf(r.status) });
    return c.redirect('/portal/admin?ok=saved', 303);
  });

  // ---- the reseller: tenants, their licence use, their people --------------------------
  const tenantFields = (c: PortalContext, tt?: TenantView, productTypes: string[] = []) => {
    const t = tr(c);
    return (
      <>
        <Field id="t-name" label={t('name')}>
          <input id="t-name" name="name" required maxlength={200} value={tt?.name ?? ''} />
        </Field>
        <Field id="t-productType" label={t('productType')}>
          <select id="t-productType" name="productType">
            {productTypes.map((code) => (
              <option value={code} selected={tt?.productType === code}>
                {code}
              </option>
            ))}
          </select>
        </Field>
        <Field id="t-reference" label={t('reference')}>
          <input id="t-reference" name="reference" maxlength={200} value={tt?.reference ?? ''} />
        </Field>
        <Field id="t-country" label={t('country')}>
          <input id="t-country" name="country" maxlength={2} pattern="[A-Z]{2}" value={tt?.country ?? 'FR'} />
        </Field>
        <Field id="t-trial" label={t('trialEndsAt')}>
          <input id="t-trial" name="trialEndsAt" type="date" value={tt?.trialEndsAt?.slice(0, 10) ?? ''} />
        </Field>
        <Field id="t-notes" label={t('notes')}>
          <textarea id="t-notes" name="notes" rows={3} maxlength={10000}>
            {tt?.notes ?? ''}
          </textarea>
        </Field>
        <div class="field check">
          <label>
            <input type="checkbox" name="internal" value="1" checked={tt?.internal ?? false} /> {t('internal')}
          </label>
        </div>
      </>
    );
  };
  const tenantBody = (f: Record<string, string>, creating: boolean) => ({
    name: f.name ?? '',
    ...(creating || f.productType ? { productType: f.productType ?? '' } : {}),
    reference: f.reference?.trim() ? f.reference.trim() : null,
    ...(f.country?.trim() ? { country: f.country.trim().toUpperCase() } : {}),
    notes: f.notes?.trim() ? f.notes : null,
    trialEndsAt: f.trialEndsAt ? `${f.trialEndsAt}T00:00:00Z` : null,
    internal: f.internal === '1',
  });
  const productTypesOf = async (c: PortalContext) => {
    const r = await apiOf(pd, c).get<{ items: { code: string }[] }>('/v1/product-types');
    return r.ok ? r.json.items.map((p) => p.code) : [];
  };

  const tenantsPage = async (c: PortalContext, extra: Extra = {}) => {
    const t = tr(c);
    const api = apiOf(pd, c);
    const [tenants, use, productTypes] = await Promise.all([api.get<List<TenantView>>('/v1/tenants?limit=1000'), api.get<{ items: LicenceUse[] }>('/v1/licences'), productTypesOf(c)]);
    if (!tenants.ok) return refused(c, tenants.error, tenants.status);
    const useOf = new Map((use.ok ? use.json.items : []).map((u) => [u.tenantId, u]));
    return c.html(
      <Layout locale={c.get('locale')} title={t('tenantsTitle')} viewer={c.get('viewer')} current="tenants" path="/portal/tenants" {...extra}>
        <Table class="list" head={[t('name'), t('productType'), t('reference'), t('country'), t('licenceUse'), t('internal')]}>
              {tenants.json.items.map((tt) => {
                const u = useOf.get(tt.id);
                return (
                  <tr>
                    <td>
                      <a href={`/portal/tenants/${tt.id}`}>{tt.name}</a>
                    </td>
                    <td>{tt.productType}</td>
                    <td>{tt.reference ?? ''}</td>
                    <td>{tt.country}</td>
                    <td class={u && u.used >= u.max ? 'full' : undefined}>{u ? `${u.used}/${u.max}` : ''}</td>
                    <td>{tt.internal ? t('yes') : t('no')}</td>
                  </tr>
                );
              })}
            </Table>
        <h2>{t('newTenant')}</h2>
        <form method="post" action="/portal/tenants" class="card form grid-form">
          <Csrf viewer={c.get('viewer')} />
          {tenantFields(c, undefined, productTypes)}
          <Submit label={t('create')} />
        </form>
      </Layout>,
      extra.status ?? 200,
    );
  };
  app.get('/tenants', (c) => tenantsPage(c));
  app.post('/tenants', async (c) => {
    const { fields, csrf } = await formOf(c);
    const r = await apiOf(pd, c, csrf).call<{ tenant: TenantView }>('POST', '/v1/tenants', { json: tenantBody(fields, true) });
    if (!r.ok) return tenantsPage(c, { error: r.error, status: statusOf(r.status) });
    return c.redirect(`/portal/tenants/${r.json.tenant.id}?ok=created`, 303);
  });

  const tenantPage = async (c: PortalContext, id: string, extra: Extra = {}) => {
    const t = tr(c);
    const api = apiOf(pd, c);
    const tenant = await api.get<TenantView>(`/v1/tenants/${encodeURIComponent(id)}`);
    if (!tenant.ok) return refused(c, tenant.error, tenant.status);
    const [people, use, productTypes] = await Promise.all([
      api.get<List<PersonView>>(`/v1/people?limit=500&tenantId=${tenant.json.id}`),
      api.get<{ items: LicenceUse[] }>('/v1/licences'),
      productTypesOf(c),
    ]);
    const licence = use.ok ? use.json.items.find((u) => u.tenantId === tenant.json.id) : undefined;
    const created = c.req.query('ok') === 'created';
    return c.html(
      <Layout
        locale={c.get('locale')}
        title={tenant.json.name}
        viewer={c.get('viewer')}
        current="tenants"
        licence={licence}
        path={`/portal/tenants/${tenant.json.id}`}
        notice={extra.notice ?? (created ? t('tenantCreated') : c.req.query('ok') === 'saved' ? t('saved') : undefined)}
        error={extra.error}
      >
        {extra.secret ? <Secret secret={extra.secret} /> : null}
        {licence ? <p class="licences">{t('licences', { used: licence.used, max: licence.max })}</p> : null}
        <form method="post" action={`/portal/tenants/${tenant.json.id}`} class="card form grid-form">
          <Csrf viewer={c.get('viewer')} />
          {tenantFields(c, tenant.json, productTypes)}
          <Submit label={t('save')} />
        </form>
        <PeopleSection c={c} people={people.ok ? people.json.items : []} roles={[...defaultRoleNames]} tenantId={tenant.json.id} back={`/portal/tenants/${tenant.json.id}`} />
      </Layout>,
      extra.status ?? 200,
    );
  };
  app.get('/tenants/:id', (c) => tenantPage(c, c.req.param('id')));
  app.post('/tenants/:id', async (c) => {
    const { fields, csrf } = await formOf(c);
    const id = c.req.param('id');
    const r = await apiOf(pd, c, csrf).call<TenantView>('PATCH', `/v1/tenants/${encodeURIComponent(id)}`, { json: tenantBody(fields, false) });
    if (!r.ok) return r.status === 404 ? refused(c, r.error, 404) : tenantPage(c, id, { error: r.error, status: statusOf(r.status) });
    return c.redirect(`/portal/tenants/${r.json.id}?ok=saved`, 303);
  });
}
