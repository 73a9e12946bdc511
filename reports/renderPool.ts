/**
 * The report workers (services/shared/workerPool.ts): PDFs, Factur-X XML and
 * CSV pages are made there, off the thread that answers the PBX (issue #24).
 * One pool per process, started on the first report; its idle threads do not
 * keep the process alive. The worker module is ./renderWorker (.js when built,
 * .ts from source).
 *
 * This module is the server's only door to them, and it imports the drawing
 * modules for their types only: pdfkit and @e-invoice-eu/core (~31 MB of heap
 * between them) are loaded by the workers, never on the server's thread, whose
 * major collections grow with its heap (test/reports/mainThreadImports.test.ts).
 */
import { WorkerPool, workerEntry } from '../services/shared/workerPool.js';
import type { InvoicePdfInput } from './invoicePdf.js';
import type { DetailsContext, DetailsPart, ItemRow } from '../services/invoices/details.js';
import type { FacturXTenant } from '../services/invoices/facturx.js';
import type { Issuer } from '../services/invoices/issuer.js';
import type { InvoiceRecord } from '../services/invoices/read.js';
import type { UserView } from '../services/users/fields.js';
import type { DirectoryTenant } from '../services/users/repo.js';

/** The tasks of ./renderWorker.ts and what each takes. */
export interface RenderTasks {
  invoicePdf: InvoicePdfInput;
  userSheet: { user: UserView; tenant: DirectoryTenant; now: Date };
  detailsPage: { ctx: DetailsContext; items: ItemRow[]; part: DetailsPart };
  facturXml: { invoice: InvoiceRecord; issuer: Issuer; tenant: FacturXTenant };
}

let pool: WorkerPool | undefined;

export function renderPool(): WorkerPool {
  pool ??= new WorkerPool(() => workerEntry(import.meta.url, 'renderWorker'));
  return pool;
}

/** Ends the report workers (a server's shutdown, a benchmark's end); the next report starts them again. */
export async function closeRenderPool(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.close();
}

/** A PDF made by a report worker; its bytes are moved back, not copied. */
export async function renderOffThread<K extends keyof RenderTasks>(kind: K, payload: RenderTasks[K]): Promise<Buffer> {
  const bytes = await renderPool().run<Uint8Array>(kind, payload);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A page of an invoice's details CSV made by a report worker (services/invoices/details.ts `DetailsFormatter`). */
export function detailsPageOffThread(ctx: DetailsContext, items: ItemRow[], part: DetailsPart): Promise<string> {
  return renderPool().run<string>('detailsPage', { ctx, items, part } satisfies RenderTasks['detailsPage']);
}

/** The invoice's PDF (./invoicePdf.ts drawInvoicePdf, made Factur-X when `facturX` is given), drawn by a report worker. */
export function renderInvoicePdf(input: InvoicePdfInput): Promise<Buffer> {
  return renderOffThread('invoicePdf', { ...input, createdAt: input.createdAt ?? new Date() });
}

/** The user's sheet (./userSheet.ts drawUserSheet), drawn by a report worker; `now` is printed and is its creation date. */
export function renderUserSheet(user: UserView, tenant: DirectoryTenant, now: Date = new Date()): Promise<Buffer> {
  return renderOffThread('userSheet', { user, tenant, now });
}

/** The invoice's or credit note's CII XML (services/invoices/facturx.ts facturXml), written by a report worker. */
export function renderFacturXml(invoice: InvoiceRecord, issuer: Issuer, tenant: FacturXTenant): Promise<string> {
  return renderPool().run<string>('facturXml', { invoice, issuer, tenant } satisfies RenderTasks['facturXml']);
}
