/**
 * The agent's own calls to its API server (reading and patching its credential Secret) when
 * the API server is given by IP address, as outside a pod (`--api-server https://127.0.0.1:…`):
 * the certificate is checked against that IP, and the IP is never sent as the TLS server
 * name, which Node warns about (DEP0123) in the agent's output. And the connections the
 * agent relays for the proxy: Nagle's algorithm off.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createApiServerTarget } from '../../../src/agent/api-server.js';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../../fakes/kube-apiserver.js';

const TOKEN = 'agent-own-sa-token';
let fake: FakeKubeApiServer;
let dir: string;

before(async () => {
  fake = await startFakeKubeApiServer({ token: TOKEN });
  dir = await mkdtemp(join(tmpdir(), 'kubegate-agent-api-'));
  await writeFile(join(dir, 'ca.crt'), fake.caPem);
  await writeFile(join(dir, 'token'), TOKEN);
});
after(async () => {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

function version(serverName: string): Promise<number> {
  const target = createApiServerTarget({ url: `https://127.0.0.1:${fake.port}`, caFile: join(dir, 'ca.crt'), tokenFile: join(dir, 'token'), serverName });
  const { endpoint } = target;
  return new Promise<number>((resolve, reject) => {
    const req = endpoint.request({ hostname: endpoint.hostname, port: endpoint.port, agent: endpoint.agent, path: '/version', headers: { host: endpoint.hostHeader, authorization: `Bearer ${TOKEN}` } });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  }).finally(() => endpoint.agent.destroy());
}

test('an API server reached by IP is verified against that IP, with no DEP0123 warning', async () => {
  const warnings: string[] = [];
  const onWarning = (warning: Error & { code?: string }): void => void warnings.push(warning.code ?? warning.name);
  process.on('warning', onWarning);
  try {
    assert.equal(await version('127.0.0.1'), 200);
    await assert.rejects(version('10.9.9.9'), /IP: 10\.9\.9\.9 is not in the cert's list/, 'a server name the certificate does not hold is refused');
    assert.equal(await version('localhost'), 200, 'a DNS server name still works');
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    assert.deepEqual(warnings.filter((code) => code === 'DEP0123'), []);
  } finally {
    process.off('warning', onWarning);
  }
});

test("the agent's connections to its API server have Nagle's algorithm off", async () => {
  // Through the tunnel each TLS record of the proxy is written as it arrives; with Nagle on, a
  // request body following its headers waited for the API server's delayed ACK (~40 ms). No
  // public API reads TCP_NODELAY back, so this reads the flag net.Socket applies at connect.
  const target = createApiServerTarget({ url: `https://127.0.0.1:${fake.port}`, caFile: join(dir, 'ca.crt'), tokenFile: join(dir, 'token'), serverName: 'localhost' });
  const socket = target.dial();
  try {
    await once(socket, 'connect');
    const flag = Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === 'kSetNoDelay');
    assert.ok(flag !== undefined, "net.Socket keeps its noDelay setting under Symbol(kSetNoDelay)");
    assert.equal((socket as unknown as Record<symbol, unknown>)[flag], true);
  } finally {
    socket.destroy();
  }
});
