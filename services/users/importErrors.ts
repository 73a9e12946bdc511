// The line errors of an import (SPEC §6): every error of the file is listed,
// in line order, then field order of the file, before anything is written.
import { ValidationError, type FieldError } from '../shared/errors.js';

/** Most errors a 400 lists; a file of garbage must not build a response of gigabytes. */
const maxReportedErrors = 100_000;

const textFields = ['fullName', 'matricule', 'identifiant'];
const optionalFields = ['forfaitMinutes', 'accountStatus', 'billingEnabled'];

/** A field's position in the file (fieldCount and file errors, about the whole line or file, first). */
function fieldOrder(field: string | undefined): number {
  if (field === undefined || field === 'fieldCount' || field === 'file') return -1;
  const k = textFields.indexOf(field);
  if (k >= 0) return k;
  const m = /^authorizedNumber(\d+)$/.exec(field);
  if (m) return 2 + Number(m[1]);
  return 20 + optionalFields.indexOf(field);
}

export class ImportErrors {
  readonly items: FieldError[] = [];
  total = 0;

  add(e: FieldError): void {
    this.total++;
    if (this.items.length < maxReportedErrors) this.items.push(e);
  }

  /** ValidationError listing the errors, if there are any. */
  throwIfAny(): void {
    if (this.total === 0) return;
    this.items.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || fieldOrder(a.field) - fieldOrder(b.field));
    const more = this.total > this.items.length ? ` (the first ${this.items.length} are listed)` : '';
    throw new ValidationError(`the file has ${this.total} error${this.total > 1 ? 's' : ''}; nothing was imported${more}`, this.items);
  }
}
