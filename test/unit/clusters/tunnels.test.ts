import assert from 'node:assert/strict';
import { PassThrough, type Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { createTunnelHub } from '../../../src/clusters/tunnels.js';
import { isKubegateError } from '../../../src/errors.js';
import type { TunnelEnd, TunnelEndReason, TunnelSession } from '../../../src/tunnel/proxy-end.js';
import type { AgentHello } from '../../../src/tunnel/wire.js';

/** A tunnel session as the hub sees it: dials are counted, closing is under the test's control. */
function session(agentId: string, token = `${agentId}-token`, connectedAt = new Date()): TunnelSession & { dials: number; end(reason?: TunnelEndReason): void; sayHello(hello: AgentHello): void } {
  let closing = false;
  let resolveClosed: (end: TunnelEnd) => void = () => undefined;
  const closed = new Promise<TunnelEnd>((resolve) => (resolveClosed = resolve));
  const listeners: ((hello: AgentHello) => void)[] = [];
  let hello: AgentHello = {
    agentId,
    agentVersion: '0.1.0',
    kubernetesVersion: 'v1.32.4',
    apiServer: { host: 'kubernetes.default.svc:443', servername: 'kubernetes.default.svc', caPem: '-----BEGIN CERTIFICATE-----\n' },
    token,
  };
  const fake = {
    get hello() {
      return hello;
    },
    connectedAt,
    closed,
    get closing() {
      return closing;
    },
    dials: 0,
    dial(): Duplex {
      fake.dials++;
      return new PassThrough();
    },
    onHello(listener: (next: AgentHello) => void) {
      listeners.push(listener);
    },
    openStreams: () => 0,
    bytes: () => ({ read: 10, written: 20 }),
    close(reason: TunnelEndReason) {
      fake.end(reason);
    },
    end(reason: TunnelEndReason = 'agent_closed') {
      if (closing) return;
      closing = true;
      resolveClosed({ reason, error: undefined });
    },
    sayHello(next: AgentHello) {
      hello = next;
      for (const listener of listeners) listener(next);
    },
  };
  return fake;
}

describe('tunnel hub', () => {
  it('spreads new streams over the live tunnels of a cluster, round-robin', () => {
    const hub = createTunnelHub();
    const a = session('agent-a');
    const b = session('agent-b');
    hub.attach('edge', a, 'a-1');
    hub.attach('edge', b, 'a-1');
    for (let i = 0; i < 6; i++) hub.dial('edge');
    assert.deepEqual([a.dials, b.dials], [3, 3]);
  });

  it('sends nothing to a closing tunnel, and answers CLUSTER_DISCONNECTED when none is left', async () => {
    const hub = createTunnelHub();
    const a = session('agent-a');
    const b = session('agent-b');
    hub.attach('edge', a, 'a-1');
    hub.attach('edge', b, 'a-1');
    a.end();
    for (let i = 0; i < 4; i++) hub.dial('edge');
    assert.deepEqual([a.dials, b.dials], [0, 4]);
    b.end();
    await b.closed;
    assert.throws(() => hub.dial('edge'), (error: unknown) => isKubegateError(error, 'CLUSTER_DISCONNECTED'));
    assert.equal(hub.credentials('edge'), undefined);
    assert.deepEqual(hub.agents('edge'), []);
  });

  it("uses the newest live tunnel's credentials, and switches the moment that agent goes", async () => {
    const hub = createTunnelHub();
    const older = session('agent-a', 'token-a', new Date(1000));
    const newer = session('agent-b', 'token-b', new Date(2000));
    hub.attach('edge', older, 'a-1');
    hub.attach('edge', newer, 'a-1');
    assert.equal(hub.credentials('edge')?.token, 'token-b');
    newer.end();
    assert.equal(hub.credentials('edge')?.token, 'token-a');
  });

  it('announces tunnels coming, going and saying a new hello', async () => {
    const hub = createTunnelHub();
    const seen: string[] = [];
    hub.subscribe((clusterId) => seen.push(clusterId));
    const a = session('agent-a');
    hub.attach('edge', a, 'a-1');
    a.sayHello({ ...a.hello, token: 'rotated' });
    a.end();
    await a.closed;
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, ['edge', 'edge', 'edge']);
    assert.equal(hub.stats().bytesIn, 10, 'bytes of closed tunnels are kept');
  });

  it('the same agent reconnecting replaces its old tunnel', async () => {
    const hub = createTunnelHub();
    const first = session('agent-a');
    const again = session('agent-a');
    hub.attach('edge', first, 'a-1');
    hub.attach('edge', again, 'a-1');
    assert.equal(first.closing, true);
    assert.equal((await first.closed).reason, 'replaced');
    assert.equal(hub.agents('edge').length, 1);
  });

  it('disconnects by credential across clusters, or a whole cluster; closes the rest at shutdown', async () => {
    const hub = createTunnelHub();
    const a = session('agent-a');
    const b = session('agent-b');
    const c = session('agent-c');
    hub.attach('edge', a, 'a-1');
    hub.attach('edge', b, 'a-2');
    hub.attach('core', c, 'a-3');
    assert.equal(hub.disconnect({ agentSecretName: 'a-1' }), 1);
    assert.deepEqual([a.closing, b.closing, c.closing], [true, false, false]);
    assert.equal(hub.disconnect({ clusterId: 'core' }), 1);
    assert.equal(c.closing, true);
    assert.deepEqual([(await a.closed).reason, (await c.closed).reason], ['revoked', 'revoked']);
    hub.close();
    assert.equal((await b.closed).reason, 'shutdown');
  });

  it('asks the peers when this process holds no tunnel of the cluster, never when it does', async () => {
    const remoteDials: string[] = [];
    const hub = createTunnelHub({
      remote: {
        credentials: () => undefined,
        dial: async (clusterId) => {
          remoteDials.push(clusterId);
          return new PassThrough();
        },
      },
    });
    await hub.dial('elsewhere');
    const a = session('agent-a');
    hub.attach('edge', a, 'a-1');
    hub.dial('edge');
    assert.deepEqual(remoteDials, ['elsewhere']);
    assert.throws(() => hub.dialLocal('elsewhere'), (error: unknown) => isKubegateError(error, 'CLUSTER_DISCONNECTED'));
  });
});
