/**
 * Values that cross into and out of a pool worker as their v8 bytes, for a cluster worker: the
 * bytes are what Redis stores, so the pool worker decodes a stored input itself and encodes its
 * result itself, and the cluster worker's event loop (which also renews BullMQ's job locks) only
 * passes bytes along. Large bytes live in SharedArrayBuffers, so they cross to a worker thread
 * without a copy: a result is copied into shared memory once, in the pool worker; an input is
 * shared with every thread that needs it and copied once per task there (each task gets its own
 * value, as with any pool argument: v8 decodes typed arrays as views of the bytes, and a task
 * that changed its input must not change the cached value under the others).
 */
import { DefaultSerializer, deserialize, serialize } from 'node:v8';
import { substituteWhere } from '../core/values.js';

/** The field that marks an encoded value inside a task's arguments. */
export const encodedField = '@weft/encoded';

/** Bytes this large go to shared memory (smaller ones are cheaper to copy with the message). */
export const shareBytes = 64 * 1024;

/** An argument the pool worker decodes before the task sees it. */
export interface EncodedArgument {
  readonly [encodedField]: Uint8Array;
}

/** A result as its v8 bytes, as the pool hands it to a cluster worker. */
export class EncodedResult {
  constructor(readonly bytes: Buffer) {}
}

/** Stands in for an argument whose v8 bytes are `bytes` (not copied here). */
export function encodedArgument(bytes: Uint8Array): EncodedArgument {
  return { [encodedField]: bytes };
}

function isEncodedArgument(value: object): value is EncodedArgument {
  return (value as Record<string, unknown>)[encodedField] instanceof Uint8Array;
}

/** `args` with every encoded argument decoded (arrays and plain objects, at any depth). */
export function decodeArguments(args: unknown[]): unknown[] {
  return substituteWhere(args, isEncodedArgument, (found) => {
    const bytes = found[encodedField];
    // Shared bytes are the cache's: decode a private copy.
    return deserialize(bytes.buffer instanceof SharedArrayBuffer ? new Uint8Array(bytes) : bytes);
  }) as unknown[];
}

/** A result's bytes, in shared memory when large and `share`; throws what v8 throws. */
export function encodeResult(value: unknown, share: boolean): Uint8Array {
  if (share && ArrayBuffer.isView(value) && value.byteLength >= shareBytes)
    return sharedView(value);
  const bytes = serialize(value);
  return share && bytes.length >= shareBytes ? shared(bytes) : bytes;
}

/**
 * Node's serializer with the raw bytes of an ArrayBufferView held back: for a view, they are the
 * last thing `serialize` writes, so its bytes are this serializer's output followed by the view's.
 */
class HeadSerializer extends DefaultSerializer {
  rawBytes: Uint8Array | undefined;
  override writeRawBytes(bytes: NodeJS.TypedArray): void {
    this.rawBytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}

/**
 * `serialize(view)`, byte for byte, built in shared memory: the view's bytes are copied once,
 * straight into place (a big binary result, an image or a file, would otherwise be copied into
 * v8's buffer first: a second copy, into fresh memory, which costs page faults).
 */
function sharedView(view: ArrayBufferView): Buffer {
  const serializer = new HeadSerializer();
  serializer.writeHeader();
  serializer.writeValue(view);
  const head = serializer.releaseBuffer();
  const raw = serializer.rawBytes!;
  const bytes = Buffer.from(new SharedArrayBuffer(head.length + raw.length));
  bytes.set(head);
  bytes.set(raw, head.length);
  return bytes;
}

/** A copy of `bytes` in a SharedArrayBuffer. */
export function shared(bytes: Uint8Array): Buffer {
  const copy = Buffer.from(new SharedArrayBuffer(bytes.length));
  copy.set(bytes);
  return copy;
}

/** Bytes that arrived as a Uint8Array (a message) as a Buffer over the same memory. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}
