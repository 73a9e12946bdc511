/**
 * Running a CSV export inside the server's export queue (SPEC §7: 3 at once, 10
 * waiting, 429 / 408 as BusyError). The slot is taken before the export opens
 * (so a refusal is still a JSON error) and held until its stream ends, fails or
 * is abandoned by the client.
 */
import type { Readable } from 'node:stream';
import type { ExportQueue } from './queue.js';
import { streamWithSlot } from './stream.js';

export interface OpenedExport {
  stream: Readable;
  /** Frees what the export holds (its connection); called once, however the stream ends (complete: read to the end). */
  close(complete: boolean): Promise<void>;
}

export async function exportWithSlot(
  queue: ExportQueue,
  open: () => Promise<OpenedExport>,
  signal?: AbortSignal,
): Promise<ReadableStream<Uint8Array>> {
  const release = await queue.acquire();
  if (signal?.aborted) {
    // the client left while waiting in the queue: give the slot to the next one
    release();
    return new ReadableStream({ start: (c) => c.close() });
  }
  let opened: OpenedExport;
  try {
    opened = await open();
  } catch (err) {
    release();
    throw err;
  }
  return streamWithSlot(opened.stream, (complete) => {
    void opened.close(complete);
    release();
  });
}
