import postgres from 'postgres';

/** An error PostgreSQL answered (postgres.js names its SQLSTATE, constraint, column and row). */
export type PostgresError = InstanceType<typeof postgres.PostgresError>;

export function isPostgresError(err: unknown): err is PostgresError {
  return err instanceof postgres.PostgresError;
}

/** A unique_violation (23505), of one constraint when it is named. */
export function isUniqueViolation(err: unknown, constraint?: string): err is PostgresError {
  return isPostgresError(err) && err.code === '23505' && (constraint === undefined || err.constraint_name === constraint);
}

/**
 * The code an error carries, if any: a PostgreSQL SQLSTATE, a postgres.js
 * connection error (CONNECTION_CLOSED…), a socket's (ECONNREFUSED…), or the
 * SQLSTATE the reservation writer hands back from its worker.
 */
export function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && err.code !== undefined ? String(err.code) : undefined;
}
