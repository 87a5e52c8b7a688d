/**
 * The held-connection generator, in its own process (so that its thousands of sockets and
 * its CPU are not counted as the proxy's): opens N watches (or N idle keep-alive
 * connections that each made one request) through a target and holds them, reporting on
 * stdout; the parent drives the phases on stdin — `open N` (N more of the same, reported as
 * `opened` like the first N: the idle scenario grows its connections in steps), `emit` (events
 * fanned out by the upstream at a set rate; delivery latency measured with the monotonic clock
 * the upstream stamped into each event), `drop` (every client socket destroyed at once), `exit`.
 * Usage: node --import tsx bench/watch-client.ts '<json options>'.
 */
import https from 'node:https';
import type { ClientRequest } from 'node:http';
import { createInterface } from 'node:readline';
import tls from 'node:tls';
import type { TLSSocket } from 'node:tls';

interface Options {
  readonly mode: 'watch' | 'idle';
  readonly origin: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly caPem: string;
  readonly count: number;
  readonly openConcurrency: number;
  readonly upstreamOrigin: string;
  /** Sent as `X-Bench-Client` with every watch; events are asked for this label only. */
  readonly client: string;
  readonly events: number;
  readonly eventIntervalMs: number;
  readonly eventTimeoutMs: number;
  readonly openTimeoutMs: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const target = new URL(options.origin);
const requests: ClientRequest[] = [];
const sockets: TLSSocket[] = [];
const latenciesMs: number[] = [];
const MARKER = '"bench/sent-ns":"';

function report(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function openWatch(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.request({
      host: target.hostname,
      port: target.port,
      path: `${options.path}/api/v1/namespaces/default/pods?watch=1`,
      headers: { ...options.headers, 'x-bench-client': options.client },
      ca: options.caPem,
      agent: false,
      timeout: options.openTimeoutMs,
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        resolve(false);
        return;
      }
      req.setTimeout(0);
      let carry = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        const now = process.hrtime.bigint();
        const chunk = carry + text;
        let at = chunk.indexOf(MARKER);
        while (at >= 0) {
          const end = chunk.indexOf('"', at + MARKER.length);
          if (end < 0) break;
          latenciesMs.push(Number(now - BigInt(chunk.slice(at + MARKER.length, end))) / 1e6);
          at = chunk.indexOf(MARKER, end);
        }
        carry = chunk.slice(-64);
        if (carry.includes(MARKER) && carry.indexOf('"', carry.indexOf(MARKER) + MARKER.length) >= 0) carry = '';
      });
      res.on('error', () => undefined);
      resolve(true);
    });
    requests.push(req);
    req.end();
  });
}

function openIdle(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: target.hostname, port: Number(target.port), ca: options.caPem, servername: 'localhost' });
    sockets.push(socket);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, options.openTimeoutMs);
    let received = Buffer.alloc(0);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      resolve(ok);
    };
    socket.on('error', () => done(false));
    socket.on('secureConnect', () => {
      let head = `GET ${options.path}/api/v1/namespaces/default/pods HTTP/1.1\r\nHost: ${target.host}\r\nConnection: keep-alive\r\n`;
      for (const [name, value] of Object.entries(options.headers)) head += `${name}: ${value}\r\n`;
      socket.write(`${head}\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const headEnd = received.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = received.subarray(0, headEnd).toString('latin1');
      if (!head.startsWith('HTTP/1.1 200')) return done(false);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (length !== null) {
        if (received.length >= headEnd + 4 + Number(length[1])) done(true);
      } else if (received.subarray(-5).toString('latin1') === '0\r\n\r\n') done(true);
    });
  });
}

/** Opens `count` more connections (`openConcurrency` at a time) and reports them as `opened` (with `held`: all still open). */
async function openMore(count: number): Promise<void> {
  const started = Date.now();
  let next = 0;
  let opened = 0;
  let failed = 0;
  const open = options.mode === 'watch' ? openWatch : openIdle;
  async function lane(): Promise<void> {
    while (next < count) {
      next++;
      if (await open()) opened++;
      else failed++;
    }
  }
  await Promise.all(Array.from({ length: Math.min(options.openConcurrency, count) }, lane));
  // Idle: how many of all the connections opened so far are still open (a server's keep-alive
  // timeout may have closed the first ones while the later ones opened).
  const held = options.mode === 'idle' ? sockets.filter((socket) => !socket.destroyed).length : requests.length;
  report({ phase: 'opened', opened, failed, held, ms: Date.now() - started });
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function emitEvents(): Promise<void> {
  const agent = new https.Agent({ ca: options.caPem, keepAlive: true });
  let expected = 0;
  for (let i = 0; i < options.events; i++) {
    const delivered = await new Promise<number>((resolve) => {
      const req = https.request(`${options.upstreamOrigin}/bench/emit?client=${encodeURIComponent(options.client)}`, { method: 'POST', agent }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve((JSON.parse(text) as { delivered: number }).delivered));
      });
      req.on('error', () => resolve(0));
      req.end();
    });
    expected += delivered;
    await new Promise((resolve) => setTimeout(resolve, options.eventIntervalMs));
  }
  const deadline = Date.now() + options.eventTimeoutMs;
  while (latenciesMs.length < expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  agent.destroy();
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  report({ phase: 'events', expected, received: sorted.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) ?? 0 });
}

const commands = createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const command = line.trim();
  const more = /^open (\d+)$/.exec(command);
  if (more !== null) void openMore(Number(more[1]));
  else if (command === 'emit') void emitEvents();
  else if (command === 'drop') {
    for (const req of requests) req.destroy();
    for (const socket of sockets) socket.destroy();
    report({ phase: 'dropped' });
  } else if (command === 'exit') process.exit(0);
});
commands.on('close', () => process.exit(0));

report({ ready: true });
void openMore(options.count);
