/**
 * Lines of an import file by a key made of digits only (a 14-digit matricule or
 * a 7-digit identifiant, both exact as doubles): an open-addressing table on
 * typed arrays. A Map of 100,000 strings costs more than reading the file.
 */
export class LineIndex {
  /** entries in insertion order */
  keys: Float64Array;
  lines: Int32Array;
  size = 0;
  private slots: Int32Array; // entry index + 1; 0 = free
  private mask: number;

  /** expected: about how many keys will be added (sized for it: no rehashing on the way) */
  constructor(expected = 1024) {
    const entries = Math.max(1024, expected);
    let slots = 4096;
    while (slots < entries * 2) slots *= 2;
    this.keys = new Float64Array(entries);
    this.lines = new Int32Array(entries);
    this.slots = new Int32Array(slots);
    this.mask = slots - 1;
  }

  private slot(key: number): number {
    const lo = key % 4294967296;
    const hi = (key - lo) / 4294967296;
    let h = Math.imul((lo | 0) ^ Math.imul(hi | 0, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    let k = h & this.mask;
    for (;;) {
      const e = this.slots[k]!;
      if (e === 0 || this.keys[e - 1] === key) return k;
      k = (k + 1) & this.mask;
    }
  }

  /** The line of key, 0 when absent. */
  get(key: number): number {
    const e = this.slots[this.slot(key)]!;
    return e === 0 ? 0 : this.lines[e - 1]!;
  }

  /** Adds key (known to be absent). */
  add(key: number, line: number): void {
    if (this.size === this.keys.length) {
      const keys = new Float64Array(this.size * 2);
      keys.set(this.keys);
      this.keys = keys;
      const lines = new Int32Array(this.size * 2);
      lines.set(this.lines);
      this.lines = lines;
    }
    if ((this.size + 1) * 2 > this.slots.length) {
      this.slots = new Int32Array(this.slots.length * 2);
      this.mask = this.slots.length - 1;
      for (let e = 0; e < this.size; e++) this.slots[this.slot(this.keys[e]!)] = e + 1;
    }
    this.keys[this.size] = key;
    this.lines[this.size] = line;
    this.size++;
    this.slots[this.slot(key)] = this.size;
  }
}
