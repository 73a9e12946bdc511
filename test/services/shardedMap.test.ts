import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ShardedMap } from '../../services/authorization/shardedMap.js';

type Op = { kind: 'set'; key: string; value: number } | { kind: 'delete'; key: string } | { kind: 'get'; key: string };

describe('ShardedMap (the book of holds)', () => {
  it('answers every sequence of operations as a Map does', () => {
    // keys from a small alphabet so that sets, gets and deletes meet; some empty or one character long
    const key = fc.string({ unit: fc.constantFrom('a', 'b', '7', '-', 'é'), maxLength: 4 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key, value: fc.integer() }),
      fc.record({ kind: fc.constant('delete' as const), key }),
      fc.record({ kind: fc.constant('get' as const), key }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const sharded = new ShardedMap<number>();
        const plain = new Map<string, number>();
        for (const o of ops) {
          if (o.kind === 'set') {
            sharded.set(o.key, o.value);
            plain.set(o.key, o.value);
          } else if (o.kind === 'delete') expect(sharded.delete(o.key)).toBe(plain.delete(o.key));
          else expect(sharded.get(o.key)).toBe(plain.get(o.key));
          expect(sharded.size).toBe(plain.size);
        }
        for (const [k, v] of plain) expect([sharded.has(k), sharded.get(k)]).toEqual([true, v]);
        expect([...sharded.values()].sort((a, b) => a - b)).toEqual([...plain.values()].sort((a, b) => a - b));
      }),
    );
  });

  it('spreads reservation ids and counter-like call ids over its shards', () => {
    const m = new ShardedMap<number>();
    for (let i = 0; i < 6400; i++) m.set(`pbx-call-${i}`, i);
    const sizes = (m as unknown as { shards: Map<string, number>[] }).shards.map((s) => s.size);
    expect(Math.max(...sizes)).toBeLessThan(4 * (6400 / 64));
    expect(Math.min(...sizes)).toBeGreaterThan(0);
  });
});
