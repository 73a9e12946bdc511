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

export type LedgerKind = 'topup' | 'adjustment' | 'call' | 'refund' | 'rerate';

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
  status: Generated<'open' | 'ended' | 'rated' | 'expired'>;
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
  importSnapshots: ImportSnapshotTable;
  importSnapshotUsers: ImportSnapshotUserTable;
  importSnapshotBatches: ImportSnapshotBatchTable;
  invoiceSequences: InvoiceSequenceTable;
  invoices: InvoiceTable;
  invoiceLines: InvoiceLineTable;
  invoiceItems: InvoiceItemTable;
  userStatusEvents: UserStatusEventTable;
}

export type Tenant = Selectable<TenantTable>;
export type NewTenant = Insertable<TenantTable>;
export type TenantUpdate = Updateable<TenantTable>;
export type ProductType = Selectable<ProductTypeTable>;
export type ApiKey = Selectable<ApiKeyTable>;
export type Role = Selectable<RoleTable>;
export type User = Selectable<UserTable>;
export type Person = Selectable<PersonTable>;
