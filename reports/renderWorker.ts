/**
 * A report worker (./renderPool.ts): draws PDFs with pdfkit, writes Factur-X XML and the
 * pages of invoice details CSVs on its own thread, at the lowest CPU priority,
 * and hands the results back to the server.
 */
import { workerData } from 'node:worker_threads';
import { serveTasks, type TaskResult } from '../services/shared/workerPool.js';
import { detailsPage } from '../services/invoices/details.js';
import { facturXml, facturXPdf } from '../services/invoices/facturx.js';
import { drawInvoicePdf } from './invoicePdf.js';
import type { RenderTasks } from './renderPool.js';
import { drawUserSheet } from './userSheet.js';

/** The bytes copied into an ArrayBuffer of their own, which is moved (a Buffer may be a slice of a pool shared with others). */
function movable(b: Buffer): TaskResult<Uint8Array> {
  const own = new Uint8Array(b.byteLength);
  own.set(b);
  return { result: own, transfer: [own.buffer] };
}

serveTasks(
  {
    invoicePdf: async (input: RenderTasks['invoicePdf']) => {
      const pdf = await drawInvoicePdf(input);
      return movable(input.facturX ? Buffer.from(await facturXPdf(pdf, input.invoice, input.issuer, input.facturX)) : pdf);
    },
    userSheet: async ({ user, tenant, now }: RenderTasks['userSheet']) => movable(await drawUserSheet(user, tenant, now)),
    detailsPage: async ({ ctx, items, part }: RenderTasks['detailsPage']) => ({ result: await detailsPage(ctx, items, part) }),
    facturXml: async ({ invoice, issuer, tenant }: RenderTasks['facturXml']) => ({ result: await facturXml(invoice, issuer, tenant) }),
  },
  workerData as { nice?: number },
);
