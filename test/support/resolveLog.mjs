// A module customization hook (node:module register): appends the URL of every
// module the process resolves to the file named by $RESOLVE_LOG. Used by
// test/reports/mainThreadImports.test.ts to see what the server's thread loads.
import { appendFileSync } from 'node:fs';

/**
 * @param {string} specifier
 * @param {import('node:module').ResolveHookContext} context
 * @param {(specifier: string, context: import('node:module').ResolveHookContext) => Promise<import('node:module').ResolveFnOutput>} next
 */
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (process.env.RESOLVE_LOG) appendFileSync(process.env.RESOLVE_LOG, `${resolved.url}\n`);
  return resolved;
}
