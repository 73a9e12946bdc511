import type postgres from 'postgres';
import { expect } from 'vitest';

/**
 * Every connection of the pool (`size` of them) can be taken at once and
 * answers outside any transaction, within 5 s: nothing failed kept one.
 */
export async function expectPoolWhole(sql: postgres.Sql, size: number): Promise<void> {
  const taken = Promise.all(
    Array.from({ length: size }, async () => {
      const c = await sql.reserve();
      try {
        const [row] = await c<{ n: number }[]>`SELECT 1 AS n`;
        return row!.n;
      } finally {
        c.release();
      }
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the pool did not give back its connections')), 5000);
  });
  try {
    expect(await Promise.race([taken, timeout])).toEqual(Array(size).fill(1));
  } finally {
    clearTimeout(timer);
  }
}
