import { sql, type Kysely } from 'kysely';

// Devices (issue 21): the phones of a tenant, on its sites, with their lines;
// the registrar's reports about them; the restarts asked for.
//
// device_types is a reseller's catalog (model, vendor, line ports, DECT); a
// tenant's site approves some of them. A device's MAC is unique among the
// reseller's live devices (a partial unique index): a retired device stays,
// with its lines, as history, and its MAC is free again.
// Registrations are the registrar's view, one row per address-of-record and
// contact; a device's status is read from them when asked (services/devices/status.ts).

export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE TABLE device_types (
      reseller_id uuid NOT NULL REFERENCES resellers (id),
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      code text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
      vendor text NOT NULL CHECK (length(vendor) BETWEEN 1 AND 100),
      model text NOT NULL CHECK (length(model) BETWEEN 1 AND 100),
      ports integer NOT NULL CHECK (ports BETWEEN 1 AND 64),
      dect boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT device_types_code_uq UNIQUE (reseller_id, code))`.execute(db);

  await sql`CREATE TABLE sites (
      tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT sites_pk PRIMARY KEY (tenant_id, id),
      CONSTRAINT sites_name_uq UNIQUE (tenant_id, name))`.execute(db);

  await sql`CREATE TABLE site_device_types (
      tenant_id uuid NOT NULL,
      site_id uuid NOT NULL,
      device_type_id uuid NOT NULL REFERENCES device_types (id),
      CONSTRAINT site_device_types_pk PRIMARY KEY (tenant_id, site_id, device_type_id),
      CONSTRAINT site_device_types_site_fk FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id) ON DELETE CASCADE)`.execute(db);

  await sql`CREATE TABLE devices (
      tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      reseller_id uuid NOT NULL REFERENCES resellers (id),
      mac text NOT NULL CHECK (mac ~ '^[0-9a-f]{12}$'),
      device_type_id uuid NOT NULL REFERENCES device_types (id),
      site_id uuid NOT NULL,
      dect_station_id text CHECK (length(dect_station_id) BETWEEN 1 AND 100),
      notes text CHECK (length(notes) <= 2000),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      retired_at timestamptz,
      CONSTRAINT devices_pk PRIMARY KEY (tenant_id, id),
      CONSTRAINT devices_site_fk FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id))`.execute(db);
  await sql`CREATE UNIQUE INDEX devices_live_mac_uq ON devices (reseller_id, mac) WHERE retired_at IS NULL`.execute(db);
  await sql`CREATE INDEX devices_tenant_mac ON devices (tenant_id, mac)`.execute(db);

  await sql`CREATE TABLE device_lines (
      tenant_id uuid NOT NULL,
      device_id uuid NOT NULL,
      port integer NOT NULL CHECK (port BETWEEN 1 AND 64),
      user_id uuid NOT NULL,
      CONSTRAINT device_lines_pk PRIMARY KEY (tenant_id, device_id, port),
      CONSTRAINT device_lines_device_fk FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, id) ON DELETE CASCADE,
      CONSTRAINT device_lines_user_fk FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE)`.execute(db);
  await sql`CREATE INDEX device_lines_user ON device_lines (tenant_id, user_id)`.execute(db);

  await sql`CREATE TABLE device_registrations (
      tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
      identifiant text NOT NULL,
      contact text NOT NULL,
      mac text CHECK (mac ~ '^[0-9a-f]{12}$'),
      registered_at timestamptz NOT NULL,
      expires_at timestamptz NOT NULL,
      user_agent text,
      source_ip text,
      source_port integer,
      CONSTRAINT device_registrations_pk PRIMARY KEY (tenant_id, identifiant, contact))`.execute(db);
  await sql`CREATE INDEX device_registrations_mac ON device_registrations (tenant_id, mac) WHERE mac IS NOT NULL`.execute(db);

  await sql`CREATE TABLE device_restarts (
      tenant_id uuid NOT NULL,
      id bigint GENERATED ALWAYS AS IDENTITY,
      device_id uuid NOT NULL,
      contact text NOT NULL,
      requested_at timestamptz NOT NULL,
      answered_at timestamptz,
      sip_status integer,
      sip_reason text,
      requested_by text,
      CONSTRAINT device_restarts_pk PRIMARY KEY (tenant_id, id),
      CONSTRAINT device_restarts_device_fk FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, id) ON DELETE CASCADE)`.execute(db);
  await sql`CREATE INDEX device_restarts_device ON device_restarts (tenant_id, device_id, id DESC)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['device_restarts', 'device_registrations', 'device_lines', 'devices', 'site_device_types', 'sites', 'device_types']) {
    await sql`DROP TABLE IF EXISTS ${sql.table(t)}`.execute(db);
  }
}
