import { describe, expect, it } from 'vitest';
import { validate, version } from 'uuid';
import { reservationId } from '../../services/authorization/authorize.js';

// Reservation ids are inserted into two B-tree keys on every allow: time-ordered
// ids keep those inserts on the last leaf (services/authorization/authorize.ts).
describe('reservation ids', () => {
  it('are valid UUIDv7, all different, and ordered by time across milliseconds', async () => {
    const ids: string[] = [];
    for (let ms = 0; ms < 5; ms++) {
      for (let i = 0; i < 5000; i++) ids.push(reservationId()); // more than one pool of random bytes
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) {
      expect(validate(id)).toBe(true);
      expect(version(id)).toBe(7);
    }
    // within a millisecond the random part orders them; across milliseconds time does
    const stamp = (id: string) => id.slice(0, 13);
    for (let k = 1; k < ids.length; k++) expect(stamp(ids[k]!) >= stamp(ids[k - 1]!)).toBe(true);
  });
});
