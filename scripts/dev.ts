/**
 * `npm run dev`: kubegate to try on a fresh machine, without a real cluster. Starts the
 * proxy (fresh data dir under the system temp dir) and, as a sample cluster, the project's
 * fake Kubernetes API server (test/fakes/kube-apiserver.ts: a strict fake with two running
 * pods), registers it as cluster `dev` with the bootstrap admin as its owner, and prints
 * the commands to try: log in, download a kubeconfig, kubectl get pods. Development only:
 * not part of the product binary (run with tsx). Ctrl-C stops everything and removes the
 * data dir.
 *
 * KUBEGATE_DEV_LISTEN (default 127.0.0.1:8443) chooses the proxy's address;
 * KUBEGATE_DEV_METRICS_LISTEN (default 127.0.0.1:0, a free port) the `/metrics` listener's,
 * so a dev proxy never fights a running `npm start` (127.0.0.1:9464) for the port. The
 * address it got is printed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy } from '../src/cmd/proxy.js';
import { loadProxyConfig } from '../src/config/proxy.js';
import { createLogger } from '../src/log.js';
import { startFakeKubeApiServer } from '../test/fakes/kube-apiserver.js';

const CLUSTER_TOKEN = `dev-cluster-${randomBytes(12).toString('hex')}`;
const password = `dev-${randomBytes(9).toString('base64url')}`;
const dir = await mkdtemp(join(tmpdir(), 'kubegate-dev-'));

// cattle-system holds the sync's ownership stamp (deploy/proxy/downstream-rbac.yaml creates it in a real cluster).
const cluster = await startFakeKubeApiServer({ token: CLUSTER_TOKEN, namespaces: ['default', 'kube-system', 'cattle-system'] });
const proxy = await startProxy(
  loadProxyConfig({
    env: { KUBEGATE_BOOTSTRAP_PASSWORD: password, KUBEGATE_LOG_LEVEL: 'warn' },
    flags: {
      listen: process.env['KUBEGATE_DEV_LISTEN'] ?? '127.0.0.1:8443',
      metricsListen: process.env['KUBEGATE_DEV_METRICS_LISTEN'] ?? '127.0.0.1:0',
      dataDir: join(dir, 'data'),
    },
  }),
  { logger: createLogger({ level: 'warn', name: 'proxy' }) },
);
const admin = await proxy.store.getUserByUsername('admin');
await proxy.store.createCluster({
  id: 'dev',
  displayName: 'sample cluster (fake API server)',
  server: cluster.url,
  caPem: cluster.caPem,
  credentials: { kind: 'token', token: CLUSTER_TOKEN },
});
await proxy.store.putMembership({ clusterId: 'dev', subjectKind: 'User', subjectName: admin!.id, role: 'owner' });

const json = (field: string): string => `node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).${field}'`;
process.stdout.write(`kubegate dev: proxy on ${proxy.publicUrl}, sample cluster "dev" (fake API server, pods web-0 and web-1)
Metrics: ${proxy.metricsUrl === undefined ? 'off' : `${proxy.metricsUrl}/metrics`}
Data dir ${dir} (removed on exit). Admin: admin / ${password}

Try, in another shell:
cd ${dir}
P=${proxy.publicUrl}
curl -s -k $P/v1/cacerts > ca.pem
TOKEN=$(curl -s --cacert ca.pem $P/v1/login -H 'content-type: application/json' -d '{"provider":"local","username":"admin","password":"${password}"}' | ${json('token')})
curl -s --cacert ca.pem $P/v1/clusters/dev/kubeconfig -H "authorization: Bearer $TOKEN" > dev.kubeconfig
kubectl --kubeconfig dev.kubeconfig get pods

Ctrl-C to stop.
`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await proxy.stop();
  await cluster.close();
  await rm(dir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stop().then(() => process.exit(0)));
