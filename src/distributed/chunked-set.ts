/**
 * `SET key value EX ttl` for values of megabytes, written without copying the value.
 *
 * ioredis sends a command with a Buffer argument by copying every argument into one new buffer
 * (`Command#toWritable`). For a stored result of 4 MiB that copy, into freshly mapped memory, cost
 * more than Redis's own work for the SET (15 ms on a 2-core VM, most of it page faults). This
 * command hands the value's chunks (a seal and the payload, say) to the connection's socket as
 * they are, so the kernel copies the bytes once; ioredis writes only the command's tail itself.
 *
 * It must be sent on its own (`redis.sendCommand`, or a `Cluster`'s, which routes it by key),
 * never in a pipeline or MULTI: ioredis collects those writes and concatenates them later, so
 * chunks written straight to the socket would overtake the commands queued before them.
 */
import { Command } from 'ioredis';

interface Writable {
  write(chunk: Uint8Array | string): boolean;
  cork(): void;
  uncork(): void;
}

export class ChunkedSet extends Command {
  readonly #head: string;
  readonly #chunks: readonly Uint8Array[];
  readonly #tail: string;

  /** `SET key <chunks concatenated> EX ttlSeconds`; the chunks must not change until it resolves. */
  constructor(key: string, chunks: readonly Uint8Array[], ttlSeconds: number) {
    // The placeholder stands for the value where ioredis reads the arguments (the key's slot on a
    // Redis Cluster, debug logs); the bytes on the wire are written by toWritable.
    const ttl = String(ttlSeconds);
    super('set', [key, '<value>', 'EX', ttl], { replyEncoding: 'utf8' });
    const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    this.#head = `*5\r\n$3\r\nSET\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n$${length}\r\n`;
    this.#chunks = chunks;
    this.#tail = `\r\n$2\r\nEX\r\n$${ttl.length}\r\n${ttl}\r\n`;
  }

  /** Writes the head and the value to `socket`; returns the tail for ioredis to write next. */
  override toWritable(socket: object): string {
    const stream = socket as Writable;
    stream.cork();
    stream.write(this.#head);
    for (const chunk of this.#chunks) if (chunk.length > 0) stream.write(chunk);
    stream.uncork();
    return this.#tail;
  }
}
