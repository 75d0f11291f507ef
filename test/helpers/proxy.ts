/**
 * A TCP proxy that counts the bytes flowing through it: put it between a client and Redis to
 * measure what that client reads (Redis 7.0 reports no per-client output bytes).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface CountingProxy {
  readonly port: number;
  /** Bytes sent from the server to the clients since the proxy started (or the last reset). */
  readonly toClients: number;
  reset(): void;
  close(): Promise<void>;
}

export async function startCountingProxy(targetPort: number): Promise<CountingProxy> {
  let toClients = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    upstream.on('data', (chunk: Buffer) => (toClients += chunk.length));
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    get toClients() {
      return toClients;
    },
    reset() {
      toClients = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
