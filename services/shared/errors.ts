// Domain errors: they say what went wrong in the domain's words and know
// nothing of HTTP; api/errors.ts maps each class to a status code.

export interface FieldError {
  field?: string;
  line?: number;
  value?: string;
  message: string;
}

export class NotFoundError extends Error {
  constructor(what: string) {
    super(`${what} not found`);
    this.name = 'NotFoundError';
  }
}

/** A request that contradicts the current state (duplicate, limit, lock). */
export class ConflictError extends Error {
  constructor(
    readonly code: 'CONFLICT' | 'LICENCE_LIMIT' | 'PRODUCT_TYPE_LOCKED' | 'IDEMPOTENCY_CONFLICT' | 'ISSUER_NOT_CONFIGURED',
    message: string,
    readonly details?: FieldError[],
  ) {
    super(message);
    this.name = 'ConflictError';
  }
}

/** Input that is well-formed JSON/CSV but whose values are not acceptable. */
export class ValidationError extends Error {
  constructor(
    message: string,
    readonly details: FieldError[] = [],
  ) {
    super(message);
    this.name = 'ValidationError';
  }
}

/** The principal may not do this (e.g. grant permissions it does not hold). */
export class ForbiddenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForbiddenError';
  }
}

/** Too much waiting work: try again later (export queue). */
export class BusyError extends Error {
  constructor(
    readonly code: 'TOO_MANY_REQUESTS' | 'REQUEST_TIMEOUT',
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'BusyError';
  }
}

/** A dependency is not available to this process right now (503). */
export class UnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnavailableError';
  }
}
