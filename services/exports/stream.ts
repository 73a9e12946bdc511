/**
 * From a Node stream of CSV bytes to a web ReadableStream for the HTTP answer,
 * holding an export slot (SPEC §7 limits) from the first byte to the last: the
 * slot is released when the stream ends, fails, or the client goes away.
 *
 * PostgreSQL's COPY sends one message per row; writing each to the socket would
 * cost one syscall per row, so rows are handed over in chunks of 32 KB or more
 * (read() gives everything buffered at once, usually a whole socket read). The
 * source is paused while the client is not reading (backpressure), so memory
 * stays bounded whatever the size of the export.
 */
import type { Readable } from 'node:stream';

const CHUNK = 32 * 1024;

/** `release(complete)`: complete is true when the source was read to its end. */
export function streamWithSlot(source: Readable, release: (complete: boolean) => void, onError?: (err: unknown) => void): ReadableStream<Uint8Array> {
  let released = false;
  const done = (complete = false) => {
    if (released) return;
    released = true;
    release(complete);
  };
  let parts: Buffer[] = [];
  /** The client is not reading: stop taking from the source until it pulls again. */
  let waiting = false;
  let resume = () => {};
  let size = 0;
  const take = (): Uint8Array => {
    const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    parts = [];
    size = 0;
    return out;
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        // paused mode: read() hands over everything buffered at once (COPY pushes one
        // buffer per row; a 'data' event per row costs more than the copy itself)
        const pump = () => {
          const next = () => source.read() as Buffer | string | null;
          for (let chunk = next(); chunk !== null; chunk = next()) {
            const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
            parts.push(b);
            size += b.length;
            if (size >= CHUNK) {
              controller.enqueue(take());
              if ((controller.desiredSize ?? 1) <= 0) {
                waiting = true;
                return;
              }
            }
          }
        };
        resume = () => {
          if (!waiting) return;
          waiting = false;
          pump();
        };
        source.on('readable', () => {
          if (!waiting) pump();
        });
        source.once('end', () => {
          if (size > 0) controller.enqueue(take());
          done(true);
          controller.close();
        });
        source.once('error', (err) => {
          done();
          onError?.(err);
          controller.error(err);
        });
        source.once('close', () => done());
      },
      pull() {
        resume();
      },
      cancel() {
        // the client went away
        done();
        source.destroy();
      },
    },
    { highWaterMark: 4 },
  );
}
