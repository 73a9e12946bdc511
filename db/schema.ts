import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';
import type { Rate } from '../engine/rate.js';

// One interface per table, camelCase (CamelCasePlugin maps to snake_case).
// numeric columns come back from postgres.js as strings: money stays a string.
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Numeric = ColumnType<string, string | undefined, string>;
type BigintId = ColumnType<string, never, never>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export interface ResellerTable {
  id: Generated<string>;
  name: string;
  createdAt: Timestamp;
}

export interface ProductTypeTable {
  code: string;
  name: string;
  maxUsers: number;
  monthlyFeePerUser: Numeric;
  locked: Generated<boolean>;
  createdAt: Timestamp;
}

export interface TariffTable {
  resellerId: string;
  id: string;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** A stored rate: the engine's `Rate` (engine/rate.ts) with its tariff, id and instant columns. */
export interface RateTable extends Omit<Rate, 'id' | 'validFrom'> {
  resellerId: string;
  tariffId: string;
  id: BigintId;
  validFrom: Timestamp;
}

export interface TenantTable {
  id: Generated<string>;
  resellerId: string;
  name: string;
  productType: string;
  tariffId: string | null;
  reference: string | null;
  country: Generated<string>;
  currency: Generated<string>;
  timezone: string;
  locale: Generated<'fr' | 'en'>;
  numberDisplay: Generated<'international' | 'national'>;
  notes: string | null;
  trialEndsAt: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  internal: Generated<boolean>;
  status: Generated<'active' | 'suspended'>;
  vatRate: Numeric;
  defaultForfaitMinutes: Generated<number>;
  maxCallSeconds: Generated<number>;
  lowBalanceThreshold: Numeric;
  freeNumbers: string[];
  /** Postal address of the bill-to box, one entry per printed line (migration 0020). */
  billingAddress: ColumnType<string[], string[] | undefined, string[]>;
  /** Whole UTC months of CDRs kept in the database; older ones are archived (migration 0051). */
  cdrRetentionMonths: Generated<number>;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface RoleTable {
  tenantId: string;
  id: Generated<string>;
  name: string;
  inherits: string;
  addPermissions: string[];
  removePermissions: string[];
  createdAt: Timestamp;
}

export type PrincipalKind = 'reseller' | 'user' | 'pbx';

export interface ApiKeyTable {
  id: string;
  secretHash: Buffer;
  principal: PrincipalKind;
  resellerId: string | null;
  tenantId: string | null;
  name: string;
  roles: string[];
  createdBy: string | null;
  createdAt: Timestamp;
  revokedAt: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface UserTable {
  tenantId: string;
  id: Generated<string>;
  fullName: string;
  matricule: string;
  identifiant: string;
  generalState: string | null;
  accountStatus: Generated<'enabled' | 'disabled'>;
  forfaitMinutes: number;
  forfaitPeriod: string | null;
  usedSeconds: Generated<number>;
  totalCallSeconds: ColumnType<string, string | number | undefined, string | number>;
  balance: Numeric;
  billingEnabled: Generated<boolean>;
  authorizedNumbers: ColumnType<(string | null)[], (string | null)[] | undefined, (string | null)[]>;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export type LedgerKind = 'topup' | 'adjustment' | 'call' | 'refund' | 'rerate' | 'release';

export interface LedgerEntryTable {
  tenantId: string;
  id: BigintId;
  userId: string;
  kind: LedgerKind;
  amount: string;
  balanceAfter: string;
  reason: string | null;
  idempotencyKey: string | null;
  cdrId: string | null;
  createdBy: string | null;
  createdAt: Timestamp;
}

export interface ReservationTable {
  tenantId: string;
  id: string;
  userId: string;
  callId: string;
  callee: string;
  rateId: string | null;
  maxSeconds: number;
  holdForfaitSeconds: number;
  holdMoney: Numeric;
  status: Generated<'open' | 'ended' | 'rated' | 'expired' | 'released'>;
  createdAt: Timestamp;
  expiresAt: Timestamp;
  releasedAt: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** The JSON answer given to the PBX, as text (replayed to a retried callId). */
  answer: string | null;
}

export interface CdrTable {
  tenantId: string;
  id: BigintId;
  callId: string;
  userId: string | null;
  identifiant: string | null;
  caller: string | null;
  callee: string;
  direction: 'out' | 'in';
  startedAt: Timestamp;
  answeredAt: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  durationSeconds: number;
  disposition: 'answered' | 'no_answer' | 'busy' | 'failed';
  site: string | null;
  line: string | null;
  rateId: string | null;
  destination: string | null;
  class: string | null;
  billableSeconds: Generated<number>;
  forfaitSeconds: Generated<number>;
  chargedSeconds: Generated<number>;
  /** The cost accounted for now (after any rerate). */
  cost: Numeric;
  /** The first rating's cost, kept when a rerate changed it (migration 0004). */
  originalCost: ColumnType<string | null, string | null | undefined, string | null>;
  reservationId: string | null;
  ratedAt: Timestamp;
  reratedAt: NullableTimestamp;
  /** 'unknown_range': the callee is outside the ranges the number metadata knows, rated all the same (migration 0030). */
  numberCheck: ColumnType<'unknown_range' | null, 'unknown_range' | null | undefined, 'unknown_range' | null>;
}

/** An archive file of a tenant's CDRs of one UTC month (migration 0051); `part` > 1 for late CDRs archived after the first. */
export interface CdrArchiveTable {
  tenantId: string;
  /** First day of the UTC month ('2025-06-01' when written). */
  month: ColumnType<Date, string, never>;
  part: number;
  /** Path under the archive directory. */
  file: string;
  sha256: string;
  rows: ColumnType<string, string | number, never>;
  /** Sum of the archived rows' ids: with `rows`, what the job checks before removing them. */
  idSum: ColumnType<string, string, never>;
  bytes: ColumnType<string, string | number, never>;
  verifiedAt: ColumnType<Date, Date | string, never>;
  restoredAt: NullableTimestamp;
}

/** Call ids of the CDRs starting within a day of a UTC month's edge: exactly once across two months (migration 0052). */
export interface CdrBoundaryKeyTable {
  tenantId: string;
  callId: string;
  startedAt: ColumnType<Date, Date | string, never>;
}

export interface RejectedCdrTable {
  tenantId: string;
  id: BigintId;
  callId: string | null;
  reason: string;
  source: string;
  raw: string;
  createdAt: Timestamp;
  reprocessedAt: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface ImportSnapshotTable {
  tenantId: string;
  id: Generated<string>;
  mode: 'append' | 'upsert' | 'sync';
  summary: ColumnType<unknown, string, string>;
  snapshot: ColumnType<unknown, string, string>;
  createdBy: string | null;
  createdAt: Timestamp;
  restoredAt: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** What an import keeps of a user it changes or removes, to put it back: every directory field and counter, never the balance. */
export type UserBeforeImage = Pick<
  Selectable<UserTable>,
  | 'id'
  | 'fullName'
  | 'matricule'
  | 'identifiant'
  | 'generalState'
  | 'accountStatus'
  | 'forfaitMinutes'
  | 'forfaitPeriod'
  | 'usedSeconds'
  | 'totalCallSeconds'
  | 'billingEnabled'
  | 'authorizedNumbers'
  | 'createdAt'
>;

/** Before-images one row per user: imports written before migration 0011 (restore still reads them). */
export interface ImportSnapshotUserTable extends UserBeforeImage {
  tenantId: string;
  importId: string;
}

/** Before-images as one row of column arrays per statement that changed or removed users (migration 0011). */
export interface ImportSnapshotBatchTable {
  tenantId: string;
  importId: string;
  ids: UserBeforeImage['id'][];
  fullNames: UserBeforeImage['fullName'][];
  matricules: UserBeforeImage['matricule'][];
  identifiants: UserBeforeImage['identifiant'][];
  generalStates: UserBeforeImage['generalState'][];
  accountStatuses: UserBeforeImage['accountStatus'][];
  forfaitMinutes: UserBeforeImage['forfaitMinutes'][];
  forfaitPeriods: UserBeforeImage['forfaitPeriod'][];
  usedSeconds: UserBeforeImage['usedSeconds'][];
  totalCallSeconds: UserBeforeImage['totalCallSeconds'][];
  billingEnabled: UserBeforeImage['billingEnabled'][];
  /** each user's numbers as the text of their array literal (text[]::text), which casts back exactly */
  authorizedNumbers: string[];
  createdAts: UserBeforeImage['createdAt'][];
}

export interface InvoiceSequenceTable {
  year: number;
  lastNumber: number;
}

export interface InvoiceTable {
  tenantId: string;
  id: Generated<string>;
  number: string;
  period: string;
  reference: string;
  status: 'issued' | 'not_billed';
  currency: string;
  locale: string;
  vatRate: string;
  totalExclVat: string;
  vat: string;
  total: string;
  issuedAt: Timestamp;
  /** An invoice, or a credit note (avoir) correcting `correctsInvoiceId` (migration 0020). */
  kind: Generated<'invoice' | 'credit_note'>;
  correctsInvoiceId: string | null;
}

export interface CreditNoteSequenceTable {
  year: number;
  lastNumber: number;
}

/** Forfait seconds used per user and tenant-local month (migration 0020). */
export interface ForfaitUsageTable {
  tenantId: string;
  userId: string;
  period: string;
  usedSeconds: number;
}

/** What an issued invoice is made of, frozen at issue (migration 0005). */
export interface InvoiceItemTable {
  tenantId: string;
  invoiceId: string;
  id: BigintId;
  lineNo: number;
  kind: 'licence' | 'call';
  userId: string | null;
  cdrId: string | null;
  chargedSeconds: Generated<number>;
  cost: string;
  amount: string;
  /** A call's details frozen at issue (migration 0150): the details CSV reads them, not cdrs, whose month may be archived. */
  callId: string | null;
  startedAt: NullableTimestamp;
  callee: string | null;
  destination: string | null;
  class: string | null;
  identifiant: string | null;
}

/** When each user was enabled, disabled or removed: written by triggers on users (migration 0005). */
export interface UserStatusEventTable {
  tenantId: string;
  id: BigintId;
  userId: string;
  status: 'enabled' | 'disabled' | 'deleted';
  at: Timestamp;
  matricule: string | null;
  identifiant: string | null;
  fullName: string | null;
}

export interface InvoiceLineTable {
  tenantId: string;
  invoiceId: string;
  lineNo: number;
  kind: string;
  label: string;
  quantity: string;
  unitPrice: string;
  amount: string;
  /** The month a correction line bills (null: the invoice's own period) and its destination class (migration 0020). */
  period: ColumnType<string | null, string | null | undefined, never>;
  callClass: ColumnType<string | null, string | null | undefined, never>;
}

/** A reseller's catalog of phone models (migration 0040). */
export interface DeviceTypeTable {
  resellerId: string;
  id: Generated<string>;
  code: string;
  vendor: string;
  model: string;
  ports: number;
  dect: Generated<boolean>;
  createdAt: Timestamp;
}

/** A tenant's site: the `site` its CDRs and indicators carry (migration 0040). */
export interface SiteTable {
  tenantId: string;
  id: Generated<string>;
  name: string;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** The device types a site approves. */
export interface SiteDeviceTypeTable {
  tenantId: string;
  siteId: string;
  deviceTypeId: string;
}

export interface DeviceTable {
  tenantId: string;
  id: Generated<string>;
  resellerId: string;
  /** 12 lowercase hex digits (engine/mac.ts) */
  mac: string;
  deviceTypeId: string;
  siteId: string;
  dectStationId: string | null;
  notes: string | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
  retiredAt: NullableTimestamp;
}

export interface DeviceLineTable {
  tenantId: string;
  deviceId: string;
  port: number;
  userId: string;
}

/** The registrar's view: one row per address-of-record (identifiant) and contact. */
export interface DeviceRegistrationTable {
  tenantId: string;
  identifiant: string;
  contact: string;
  mac: string | null;
  registeredAt: Timestamp;
  expiresAt: Timestamp;
  userAgent: string | null;
  sourceIp: string | null;
  sourcePort: number | null;
}

export interface DeviceRestartTable {
  tenantId: string;
  id: BigintId;
  deviceId: string;
  contact: string;
  requestedAt: Timestamp;
  answeredAt: NullableTimestamp;
  sipStatus: number | null;
  sipReason: string | null;
  requestedBy: string | null;
}

/** A running Forfait server (migration 0080): where the others forward to, and the session that holds its tenants' locks. */
export interface ServerTable {
  id: string;
  address: string;
  lockPid: number | null;
  startedAt: Timestamp;
  heartbeatAt: Timestamp;
}

/** The server that took each tenant's account book last (migration 0080; the reservations fence reads it). */
export interface TenantOwnerTable {
  tenantId: string;
  serverId: string;
  since: Timestamp;
}

/** A person who signs in to the portal (migration 0060): a tenant's, or the reseller's when tenantId is null. */
export interface PersonTable {
  id: Generated<string>;
  resellerId: string;
  tenantId: string | null;
  email: string;
  name: string;
  locale: Generated<'fr' | 'en'>;
  roles: string[];
  status: Generated<'invited' | 'active' | 'disabled'>;
  passwordHash: string | null;
  failedAttempts: Generated<number>;
  lockedUntil: NullableTimestamp;
  createdBy: string | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** One-time links: an invitation or a password reset, kept as the SHA-256 of the token. */
export interface PersonTokenTable {
  tokenHash: Buffer;
  personId: string;
  purpose: 'invitation' | 'reset';
  expiresAt: Date;
  usedAt: NullableTimestamp;
  createdAt: Timestamp;
}

/** A signed-in browser: the SHA-256 of its cookie's token, and its CSRF token. */
export interface SessionTable {
  tokenHash: Buffer;
  personId: string;
  csrf: string;
  address: string | null;
  createdAt: Timestamp;
  expiresAt: Date;
  /** Last use; the session ends idle this long after it (migration 0110). */
  lastSeenAt: Timestamp;
}

export interface SignInFailureTable {
  id: BigintId;
  address: string;
  email: string;
  at: Date;
}

/** The audit trail (migration 0061): append-only. */
export interface AuditEventTable {
  id: BigintId;
  resellerId: string;
  tenantId: string | null;
  at: Timestamp;
  actorKind: 'key' | 'person' | 'system';
  actorId: string;
  actorLabel: string | null;
  action: string;
  targetType: string;
  targetId: string | null;
  before: ColumnType<unknown, string | null, never>;
  after: ColumnType<unknown, string | null, never>;
}

export interface Database {
  people: PersonTable;
  personTokens: PersonTokenTable;
  sessions: SessionTable;
  signInFailures: SignInFailureTable;
  auditEvents: AuditEventTable;
  resellers: ResellerTable;
  productTypes: ProductTypeTable;
  tariffs: TariffTable;
  rates: RateTable;
  tenants: TenantTable;
  roles: RoleTable;
  apiKeys: ApiKeyTable;
  users: UserTable;
  ledgerEntries: LedgerEntryTable;
  reservations: ReservationTable;
  cdrs: CdrTable;
  rejectedCdrs: RejectedCdrTable;
  cdrArchives: CdrArchiveTable;
  cdrBoundaryKeys: CdrBoundaryKeyTable;
  importSnapshots: ImportSnapshotTable;
  importSnapshotUsers: ImportSnapshotUserTable;
  importSnapshotBatches: ImportSnapshotBatchTable;
  invoiceSequences: InvoiceSequenceTable;
  invoices: InvoiceTable;
  invoiceLines: InvoiceLineTable;
  invoiceItems: InvoiceItemTable;
  userStatusEvents: UserStatusEventTable;
  forfaitUsage: ForfaitUsageTable;
  creditNoteSequences: CreditNoteSequenceTable;
  deviceTypes: DeviceTypeTable;
  sites: SiteTable;
  siteDeviceTypes: SiteDeviceTypeTable;
  devices: DeviceTable;
  deviceLines: DeviceLineTable;
  deviceRegistrations: DeviceRegistrationTable;
  deviceRestarts: DeviceRestartTable;
  servers: ServerTable;
  tenantOwners: TenantOwnerTable;
}

export type Tenant = Selectable<TenantTable>;
export type NewTenant = Insertable<TenantTable>;
export type TenantUpdate = Updateable<TenantTable>;
export type ProductType = Selectable<ProductTypeTable>;
export type ApiKey = Selectable<ApiKeyTable>;
export type Role = Selectable<RoleTable>;
export type User = Selectable<UserTable>;
export type Person = Selectable<PersonTable>;
