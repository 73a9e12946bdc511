// Domain errors: they say what went wrong in the domain's words and know
// nothing of HTTP; api/errors.ts maps each class to a status code.

export interface FieldError {
  field?: string;
  line?: number;
  value?: string;
  message: string;
}

/** Every domain error names itself after its class (for logs and stack traces). */
abstract class DomainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class NotFoundError extends DomainError {
  constructor(what: string) {
    super(`${what} not found`);
  }
}

/** A request that contradicts the current state (duplicate, limit, lock). */
export class ConflictError extends DomainError {
  constructor(
    readonly code: 'CONFLICT' | 'LICENCE_LIMIT' | 'PRODUCT_TYPE_LOCKED' | 'IDEMPOTENCY_CONFLICT',
    message: string,
    readonly details?: FieldError[],
  ) {
    super(message);
  }
}

/** Input that is well-formed JSON/CSV but whose values are not acceptable. */
export class ValidationError extends DomainError {
  constructor(
    message: string,
    readonly details: FieldError[] = [],
  ) {
    super(message);
  }
}

/** The principal may not do this (e.g. grant permissions it does not hold). */
export class ForbiddenError extends DomainError {}

/** Too much waiting work: try again later (export queue). */
export class BusyError extends DomainError {
  constructor(
    readonly code: 'TOO_MANY_REQUESTS' | 'REQUEST_TIMEOUT',
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** A dependency is not available to this process right now (503). */
export class UnavailableError extends DomainError {}
