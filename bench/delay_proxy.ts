/**
 * A TCP proxy on 127.0.0.1 that holds every chunk for a while before passing it on, in
 * order: a registry on loopback made to look far away. Each direction waits `oneWayMs`, so
 * a request and its answer take twice that. Connections open at once (the handshake is not
 * delayed).
 *
 * @module
 */

/** A running proxy. */
export interface DelayProxy {
  /** `127.0.0.1:PORT`, to use instead of the target's address. */
  readonly host: string;
  /** Stop listening, end every connection and wait until all have ended. */
  close(): Promise<void>;
}

/**
 * Start a proxy to `target` that delays each direction by `oneWayMs`.
 *
 * @example
 * ```ts
 * import { startDelayProxy } from "./delay_proxy.ts";
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response("far"));
 * const proxy = startDelayProxy({ hostname: "127.0.0.1", port: server.addr.port }, 10);
 * const started = performance.now();
 * console.log(await (await fetch(`http://${proxy.host}/`)).text()); // far
 * console.log(performance.now() - started >= 20); // true
 * await proxy.close();
 * await server.shutdown();
 * ```
 */
export function startDelayProxy(
  target: { hostname: string; port: number },
  oneWayMs: number,
): DelayProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const connections: Promise<void>[] = [];
  const closeAll = (...conns: (Deno.Conn | undefined)[]) => {
    for (const conn of conns) {
      if (!conn || !open.delete(conn)) continue;
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
  };
  const serving = (async () => {
    for await (const client of listener) {
      open.add(client);
      connections.push((async () => {
        let upstream: Deno.Conn | undefined;
        try {
          upstream = await Deno.connect(target);
          open.add(upstream);
          await Promise.all([
            delayedPipe(client, upstream, oneWayMs),
            delayedPipe(upstream, client, oneWayMs),
          ]);
        } catch {
          // A reset or a refused target ends this connection only.
        } finally {
          closeAll(client, upstream);
        }
      })());
    }
  })().catch(() => {});
  return {
    host: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    async close() {
      listener.close();
      await serving;
      closeAll(...open);
      await Promise.all(connections);
    },
  };
}

/**
 * Copy `from` to `to`, each chunk written `delayMs` after it was read and in the order read,
 * as a slow link delivers it; the end of `from` ends `to`'s writing side, after the last chunk.
 */
async function delayedPipe(from: Deno.Conn, to: Deno.Conn, delayMs: number): Promise<void> {
  let delivered = Promise.resolve();
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const read = await from.read(buffer);
      if (read === null) break;
      const chunk = buffer.slice(0, read);
      const due = performance.now() + delayMs;
      delivered = delivered.then(async () => {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        for (let written = 0; written < chunk.length;) {
          written += await to.write(chunk.subarray(written));
        }
      });
    }
  } finally {
    await delivered.catch(() => {});
    try {
      await to.closeWrite();
    } catch {
      // The other side is gone already.
    }
  }
}
