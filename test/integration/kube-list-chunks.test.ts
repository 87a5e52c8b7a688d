/**
 * Lists in chunks (`limit`/`continue`), end to end over real sockets: the fake
 * kube-apiserver chunks as kube-apiserver does (checked with raw requests and with real
 * kubectl's pager), the kube client pages through any number of objects within its per-page
 * body bound and starts over when a continue token expires, and the informer applies a list
 * only once its last page arrived.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { createKubeClient } from '../../src/kube/client.js';
import type { KubeClient, KubeClientOptions, KubeObject } from '../../src/kube/client.js';
import { loadKubeEndpoint } from '../../src/kube/endpoint.js';
import { createInformer } from '../../src/kube/informer.js';
import type { InformerEventType } from '../../src/kube/informer.js';
import { startFakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import type { FakeObject } from '../fakes/kube-resources.js';
import { runKubectl, writeKubeconfig } from '../support/kubectl.js';
import type { WrittenKubeconfig } from '../support/kubectl.js';
import { eventually } from '../support/eventually.js';

const token = 'chunks-sa-token-0123456789';
const NAMESPACE = 'chunked';
const SECRETS = `/api/v1/namespaces/${NAMESPACE}/secrets`;

interface ListBody {
  readonly kind?: string;
  readonly code?: number;
  readonly reason?: string;
  readonly message?: string;
  readonly metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  readonly items?: FakeObject[];
}

function configMap(name: string, data: Record<string, string> = {}, labels?: Record<string, string>): FakeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: NAMESPACE, ...(labels === undefined ? {} : { labels }) }, data };
}

function secret(name: string, value = 'v'): FakeObject {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NAMESPACE }, type: 'Opaque', data: { hash: Buffer.from(value).toString('base64') } };
}

/** `s-00`, `s-01`…: names whose key order is their number order. */
function names(count: number, prefix = 's'): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);
}

describe('lists in chunks against the fake kube-apiserver', () => {
  let fake: FakeKubeApiServer;
  let kubeconfig: WrittenKubeconfig;

  before(async () => {
    fake = await startFakeKubeApiServer({ token, namespaces: ['default', NAMESPACE] });
    kubeconfig = await writeKubeconfig({ server: fake.url, caPem: fake.caPem, token });
  });

  after(async () => {
    await fake.close();
    await kubeconfig.remove();
  });

  beforeEach(() => {
    fake.resources.onListPage = undefined;
    fake.unavailable = false;
    for (const object of fake.objects('secrets', NAMESPACE)) fake.resources.remove('secrets', NAMESPACE, object.metadata.name);
    for (const object of fake.objects('configmaps', NAMESPACE)) fake.resources.remove('configmaps', NAMESPACE, object.metadata.name);
  });

  async function clientFor(options: KubeClientOptions = {}): Promise<KubeClient> {
    return createKubeClient(await loadKubeEndpoint(kubeconfig.path), options);
  }

  /** One raw GET with the fake's CA and token: the status and the parsed body, Status bodies included. */
  function get(path: string): Promise<{ status: number; body: ListBody }> {
    return new Promise((resolve, reject) => {
      const outgoing = httpsRequest({ host: '127.0.0.1', port: fake.port, path, ca: fake.caPem, headers: { Authorization: `Bearer ${token}` }, agent: false }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as ListBody }));
      });
      outgoing.on('error', reject);
      outgoing.end();
    });
  }

  describe('the fake chunks as kube-apiserver does', () => {
    it('answers at most `limit` items in key order with an opaque continue token, every page from the first page\'s snapshot', async () => {
      for (const name of [...names(7)].reverse()) fake.resources.put('secrets', secret(name));
      const first = await get(`${SECRETS}?limit=3`);
      assert.equal(first.status, 200);
      assert.deepEqual(first.body.items?.map((item) => item.metadata.name), ['s-00', 's-01', 's-02']);
      assert.equal(first.body.metadata.remainingItemCount, 4);
      const snapshot = first.body.metadata.resourceVersion;
      assert.ok(typeof first.body.metadata.continue === 'string' && first.body.metadata.continue !== '');
      // Writes after the first page are not in this list: they come through the watch from its resourceVersion.
      fake.resources.put('secrets', secret('s-01', 'changed'));
      fake.resources.remove('secrets', NAMESPACE, 's-04');
      fake.resources.put('secrets', secret('s-99'));
      const second = await get(`${SECRETS}?limit=3&continue=${encodeURIComponent(first.body.metadata.continue!)}`);
      assert.deepEqual(second.body.items?.map((item) => item.metadata.name), ['s-03', 's-04', 's-05']);
      assert.equal(second.body.metadata.resourceVersion, snapshot);
      const last = await get(`${SECRETS}?limit=3&continue=${encodeURIComponent(second.body.metadata.continue!)}`);
      assert.deepEqual(last.body.items?.map((item) => item.metadata.name), ['s-06']);
      assert.equal(last.body.metadata.continue, undefined, 'the last page has no continue token');
      assert.equal(last.body.metadata.resourceVersion, snapshot);
      const whole = await get(SECRETS);
      assert.deepEqual(whole.body.items?.map((item) => item.metadata.name), [...names(7).filter((name) => name !== 's-04'), 's-99']);
      assert.notEqual(whole.body.metadata.resourceVersion, snapshot);
    });

    it('refuses a continue token of another resource, namespace or selector, a forged one, resourceVersion beside continue and a limit that is no number, with 400', async () => {
      for (const name of names(4)) fake.resources.put('secrets', secret(name));
      for (const name of names(4, 'c')) fake.resources.put('configmaps', configMap(name, {}, { app: 'x' }));
      const first = await get(`${SECRETS}?limit=2`);
      const token = encodeURIComponent(first.body.metadata.continue!);
      const selected = await get(`/api/v1/namespaces/${NAMESPACE}/configmaps?limit=2&labelSelector=app%3Dx`);
      assert.equal(selected.body.metadata.remainingItemCount, undefined, 'no count when a selector filtered the list');
      const refused = [
        `/api/v1/namespaces/${NAMESPACE}/configmaps?limit=2&continue=${token}`,
        `/api/v1/secrets?limit=2&continue=${token}`,
        `/api/v1/namespaces/default/secrets?limit=2&continue=${token}`,
        `${SECRETS}?limit=2&labelSelector=a%3Db&continue=${token}`,
        `/api/v1/namespaces/${NAMESPACE}/configmaps?limit=2&continue=${encodeURIComponent(selected.body.metadata.continue!)}`,
        `${SECRETS}?limit=2&continue=bm90LWEtdG9rZW4`,
        `${SECRETS}?limit=2&resourceVersion=1&continue=${token}`,
        `${SECRETS}?limit=two`,
      ];
      for (const path of refused) {
        const answer = await get(path);
        assert.equal(answer.status, 400, path);
        assert.equal(answer.body.kind, 'Status');
        assert.equal(answer.body.reason, 'BadRequest');
      }
      const again = await get(`${SECRETS}?limit=2&continue=${token}`);
      assert.deepEqual(again.body.items?.map((item) => item.metadata.name), ['s-02', 's-03'], 'the token still works where it belongs');
    });

    it('answers an expired continue token 410 with the Expired Status and a token for the rest as it is now', async () => {
      for (const name of names(5)) fake.resources.put('secrets', secret(name));
      const first = await get(`${SECRETS}?limit=2`);
      fake.resources.expireContinueTokens();
      fake.resources.remove('secrets', NAMESPACE, 's-03');
      const expired = await get(`${SECRETS}?limit=2&continue=${encodeURIComponent(first.body.metadata.continue!)}`);
      assert.equal(expired.status, 410);
      assert.equal(expired.body.kind, 'Status');
      assert.equal(expired.body.reason, 'Expired');
      assert.equal(expired.body.code, 410);
      assert.match(expired.body.message ?? '', /too old to display a consistent list result/);
      const rest = await get(`${SECRETS}?limit=5&continue=${encodeURIComponent(expired.body.metadata.continue!)}`);
      assert.deepEqual(rest.body.items?.map((item) => item.metadata.name), ['s-02', 's-04']);
    });

    it('chunks pod lists too, plain and as the Table kubectl asks for, because kubectl get pods always sends limit=500', async () => {
      const pods = `/api/v1/namespaces/default/pods`;
      const first = await get(`${pods}?limit=1`);
      assert.equal(first.body.items?.length, 1);
      assert.equal(first.body.metadata.remainingItemCount, 1);
      const rest = await get(`${pods}?limit=1&continue=${encodeURIComponent(first.body.metadata.continue!)}`);
      assert.equal(rest.body.items?.length, 1);
      assert.equal(rest.body.metadata.continue, undefined);
      assert.equal((await get(`${pods}?limit=1&fieldSelector=metadata.name%3Dweb-0&continue=${encodeURIComponent(first.body.metadata.continue!)}`)).status, 400);
      const result = await runKubectl({ binary: 'system', kubeconfig: kubeconfig.path, args: ['get', 'pods', '-n', 'default', '--chunk-size=1'] });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^NAME\s+READY\s+STATUS[\s\S]*\nweb-0\s[\s\S]*\nweb-1\s/);
    });

    it('is read whole by real kubectl\'s pager with --chunk-size', async () => {
      for (const name of names(9)) fake.resources.put('secrets', secret(name));
      const before = fake.requests.length;
      const result = await runKubectl({ binary: 'system', kubeconfig: kubeconfig.path, args: ['get', 'secrets', '-n', NAMESPACE, '--chunk-size=2', '-o', 'name'] });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.stdout.trim().split('\n'), names(9).map((name) => `secret/${name}`));
      const pages = fake.requests.slice(before).filter((request) => request.path === SECRETS && request.rawQuery.includes('limit=2'));
      assert.equal(pages.length, 5);
    });
  });

  describe('the kube client', () => {
    it('reads every page, asking for its page size each time, and answers the snapshot\'s resourceVersion', async () => {
      for (const name of names(10)) fake.resources.put('secrets', secret(name));
      let writes = 0;
      fake.resources.onListPage = ({ continued }) => {
        if (continued && writes++ === 0) fake.resources.put('secrets', secret('s-50'));
      };
      const before = fake.requests.length;
      const list = await (await clientFor({ listPageSize: 3 })).list<FakeObject>(SECRETS);
      assert.deepEqual(list.items.map((item) => item.metadata.name), names(10));
      const pages = fake.requests.slice(before).filter((request) => request.path === SECRETS);
      assert.equal(pages.length, 4);
      for (const page of pages) assert.equal(new URLSearchParams(page.rawQuery).get('limit'), '3');
      assert.ok(Number(list.metadata.resourceVersion) < Number(fake.objects('secrets', NAMESPACE).find((item) => item.metadata.name === 's-50')!.metadata.resourceVersion));
    });

    it('bounds each page, not the list: a list larger than the body bound is read when its pages fit', async () => {
      const large = 'x'.repeat(1000);
      for (const name of names(12)) fake.resources.put('configmaps', configMap(name, { large }));
      const path = `/api/v1/namespaces/${NAMESPACE}/configmaps`;
      const paged = await (await clientFor({ listPageSize: 2, maxBodyBytes: 4096 })).list<FakeObject>(path);
      assert.equal(paged.items.length, 12);
      await assert.rejects((await clientFor({ listPageSize: 500, maxBodyBytes: 4096 })).list(path), { code: 'KUBE_API_FAILED', message: /too large/ });
    });

    it('reduces each item as its page arrives', async () => {
      for (const name of names(5)) fake.resources.put('secrets', secret(name, `value-${name}`));
      const list = await (await clientFor({ listPageSize: 2 })).list<FakeObject, KubeObject>(SECRETS, {}, (item) => ({ metadata: { name: item.metadata.name } }));
      assert.deepEqual(list.items, names(5).map((name) => ({ metadata: { name } })));
    });

    it('starts the list over when a continue token expired, and answers the new snapshot only', async () => {
      for (const name of names(6)) fake.resources.put('secrets', secret(name));
      let expired = false;
      fake.resources.onListPage = ({ continued }) => {
        if (!continued || expired) return;
        expired = true;
        fake.resources.remove('secrets', NAMESPACE, 's-00');
        fake.resources.put('secrets', secret('s-77'));
        fake.resources.expireContinueTokens();
      };
      const before = fake.requests.length;
      const list = await (await clientFor({ listPageSize: 2 })).list<FakeObject>(SECRETS);
      assert.deepEqual(list.items.map((item) => item.metadata.name), [...names(6).slice(1), 's-77']);
      const pages = fake.requests.slice(before).filter((request) => request.path === SECRETS);
      assert.deepEqual(
        pages.map((page) => page.status),
        [200, 410, 200, 200, 200],
      );
      assert.equal(pages.filter((page) => !page.rawQuery.includes('continue=')).length, 2, 'started over once, without a continue token');
    });

    it('gives up after starting over twice, with a 410 KUBE_API_FAILED', async () => {
      for (const name of names(4)) fake.resources.put('secrets', secret(name));
      fake.resources.onListPage = ({ continued }) => {
        if (continued) fake.resources.expireContinueTokens();
      };
      const before = fake.requests.length;
      await assert.rejects((await clientFor({ listPageSize: 2 })).list(SECRETS), (error: unknown) => {
        assert.equal((error as { code?: string }).code, 'KUBE_API_FAILED');
        assert.equal((error as { kubeStatus?: { code: number } }).kubeStatus?.code, 410);
        return true;
      });
      const firstPages = fake.requests.slice(before).filter((request) => request.path === SECRETS && !request.rawQuery.includes('continue='));
      assert.equal(firstPages.length, 3);
    });
  });

  describe('the informer', () => {
    type Change = `${InformerEventType} ${string}`;

    async function startInformer(changes: Change[], errors: unknown[] = []) {
      const informer = createInformer<FakeObject>(await clientFor({ listPageSize: 2 }), {
        path: SECRETS,
        initialBackoffMs: 20,
        maxBackoffMs: 40,
        onChange: (type, object) => changes.push(`${type} ${object.metadata.name}`),
        onError: (error) => errors.push(error),
      });
      informer.start();
      await informer.synced();
      return informer;
    }

    /** An informer whose first lists fail: resolves once `errors` holds two failures. */
    async function startInformerAfterFailure(errors: unknown[]) {
      const informer = createInformer<FakeObject>(await clientFor({ listPageSize: 2 }), {
        path: SECRETS,
        initialBackoffMs: 20,
        maxBackoffMs: 40,
        onError: (error) => errors.push(error),
      });
      informer.start();
      await eventually(() => errors.length >= 2, 5000, 'failed lists');
      return informer;
    }

    it('holds every object of a list longer than one page', async () => {
      for (const name of names(11)) fake.resources.put('secrets', secret(name));
      const changes: Change[] = [];
      const informer = await startInformer(changes);
      try {
        assert.deepEqual(informer.list().map((item) => item.metadata.name).sort(), names(11));
        assert.deepEqual(changes, names(11).map((name) => `added ${name}`));
      } finally {
        informer.stop();
      }
    });

    it('re-lists after an expired continue token from the start, and announces only what changed against what it held', async () => {
      for (const name of names(7)) fake.resources.put('secrets', secret(name));
      const changes: Change[] = [];
      const informer = await startInformer(changes);
      try {
        changes.length = 0;
        let expired = false;
        fake.resources.onListPage = ({ continued }) => {
          if (!continued || expired) return;
          expired = true;
          fake.resources.put('secrets', secret('s-03', 'updated'));
          fake.resources.remove('secrets', NAMESPACE, 's-05');
          fake.resources.put('secrets', secret('s-70'));
          fake.resources.expireContinueTokens();
        };
        // Compaction past the informer's version (a write elsewhere moved it on): the watch
        // comes back from a version that is gone and must list again.
        fake.resources.put('configmaps', configMap('elsewhere'));
        fake.resources.compact();
        await eventually(() => informer.get('s-70') !== undefined, 5000, 'the re-list');
        assert.ok(expired, 'the re-list met an expired continue token');
        assert.deepEqual(changes.sort(), ['added s-70', 'deleted s-05', 'updated s-03']);
        assert.deepEqual(informer.list().map((item) => item.metadata.name).sort(), [...names(7).filter((name) => name !== 's-05'), 's-70']);
      } finally {
        informer.stop();
      }
    });

    it('treats a list whose continue tokens keep expiring as a failure, retried with backoff and reported, not as a watch to re-list at once', async () => {
      for (const name of names(5)) fake.resources.put('secrets', secret(name));
      fake.resources.onListPage = ({ continued }) => {
        if (continued) fake.resources.expireContinueTokens();
      };
      const errors: unknown[] = [];
      const informer = await startInformerAfterFailure(errors);
      try {
        assert.equal((errors[0] as { kubeStatus?: { code: number } }).kubeStatus?.code, 410);
        assert.equal(informer.hasSynced, false, 'a list that never completes never syncs');
        fake.resources.onListPage = undefined;
        await informer.synced();
        assert.deepEqual(informer.list().map((item) => item.metadata.name).sort(), names(5));
      } finally {
        informer.stop();
      }
    });

    it('keeps its cache as it was when a list fails on a later page, and applies the list once one succeeds', async () => {
      for (const name of names(6)) fake.resources.put('secrets', secret(name));
      const changes: Change[] = [];
      const errors: unknown[] = [];
      const informer = await startInformer(changes, errors);
      try {
        changes.length = 0;
        fake.resources.onListPage = ({ continued }) => {
          // The second page is answered; every request after it fails (the API server's storage goes away).
          if (continued) fake.unavailable = true;
        };
        fake.resources.remove('secrets', NAMESPACE, 's-00');
        fake.resources.put('secrets', secret('s-60'));
        fake.resources.compact();
        await eventually(() => errors.length >= 3, 5000, 'failed re-lists');
        assert.deepEqual(changes, [], 'nothing of a partial list was applied');
        assert.deepEqual(informer.list().map((item) => item.metadata.name).sort(), names(6));
        fake.resources.onListPage = undefined;
        fake.unavailable = false;
        await eventually(() => informer.get('s-60') !== undefined, 5000, 'the re-list');
        assert.deepEqual(changes.sort(), ['added s-60', 'deleted s-00']);
      } finally {
        informer.stop();
      }
    });
  });

  describe('against an API server that answers a list wrongly', () => {
    /** A plain-HTTP stand-in for a broken API server: `answer` writes each list page. */
    async function brokenServer(answer: (query: URLSearchParams) => string, clientOptions: KubeClientOptions = {}): Promise<{ client: KubeClient; pages: URLSearchParams[]; close: () => Promise<void> }> {
      const pages: URLSearchParams[] = [];
      const server = createServer((request, response) => {
        const query = new URL(request.url ?? '/', 'http://x').searchParams;
        pages.push(query);
        response.writeHead(200, { 'Content-Type': 'application/json' });
        response.end(answer(query));
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      const agent = new Agent({ keepAlive: true });
      const client = createKubeClient({ request: httpRequest, agent, hostname: '127.0.0.1', port, hostHeader: `127.0.0.1:${port}`, pathPrefix: '', headers: () => ({}) }, { listPageSize: 2, ...clientOptions });
      return {
        client,
        pages,
        close: async () => {
          agent.destroy();
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
        },
      };
    }

    it('refuses a continue token answered again, instead of asking for the same page forever', async () => {
      const broken = await brokenServer(() => JSON.stringify({ metadata: { resourceVersion: '5', continue: 'same' }, items: [secret('s-00')] }));
      try {
        await assert.rejects(broken.client.list(SECRETS), { code: 'KUBE_API_FAILED', message: /continue token of this list again/ });
        assert.equal(broken.pages.length, 2);
      } finally {
        await broken.close();
      }
    });

    it('refuses a loop of continue tokens longer than one, instead of going round it forever', async () => {
      const nextOf: Record<string, string> = { '': 'a', a: 'b', b: 'c', c: 'a' };
      const broken = await brokenServer((query) =>
        // Ends the list after 100 pages, so that a client going round the loop fails this test instead of hanging it.
        JSON.stringify({ metadata: { resourceVersion: '5', continue: broken.pages.length > 100 ? '' : nextOf[query.get('continue') ?? ''] }, items: [secret('s-00')] }),
      );
      try {
        await assert.rejects(broken.client.list(SECRETS), { code: 'KUBE_API_FAILED', message: /continue token of this list again/ });
        assert.deepEqual(
          broken.pages.map((query) => query.get('continue')),
          [null, 'a', 'b', 'c'],
        );
      } finally {
        await broken.close();
      }
    });

    it('stops a list whose pages never end at its byte bound, so that a hostile API server cannot fill the memory', async () => {
      const broken = await brokenServer(
        // Ends after 10,000 pages, so that a client without the bound fails this test instead of hanging it.
        () => JSON.stringify({ metadata: { resourceVersion: '5', continue: broken.pages.length > 10_000 ? '' : `page-${broken.pages.length}` }, items: [secret(`s-${broken.pages.length}`)] }),
        { maxListBytes: 64 * 1024 },
      );
      try {
        await assert.rejects(broken.client.list(SECRETS), { code: 'KUBE_API_FAILED', message: /the list is larger than 65536 bytes/ });
        // A page is some 200 bytes: the bound stops the list after a few hundred.
        assert.ok(broken.pages.length < 1000, `asked for ${broken.pages.length} pages`);
      } finally {
        await broken.close();
      }
    });

    it('has an informer re-list at once after a watch answered 410 only once in a row: a watch that expires right after every list is a failure, retried with backoff', async () => {
      const expiredEvent = JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, metadata: {} } });
      const broken = await brokenServer((query) => (query.get('watch') === null ? JSON.stringify({ metadata: { resourceVersion: '5' }, items: [secret('s-00')] }) : `${expiredEvent}\n`));
      const errors: unknown[] = [];
      // The backoff outlasts the test: a second list before the failure is reported can only be an immediate one.
      const informer = createInformer<FakeObject>(broken.client, { path: SECRETS, initialBackoffMs: 600_000, onError: (error) => errors.push(error) });
      const lists = (): number => broken.pages.filter((query) => query.get('watch') === null).length;
      try {
        informer.start();
        await eventually(() => errors.length > 0 || lists() > 50, 5000, 'a reported failure, or a storm of lists');
        assert.equal(lists(), 2, 'one list, and one re-list at once after the first 410');
        assert.equal(errors.length, 1);
        assert.equal((errors[0] as { code?: number }).code, 410);
        assert.equal(informer.get('s-00')?.metadata.name, 's-00', 'the cache is kept');
      } finally {
        informer.stop();
        await broken.close();
      }
    });

    it('refuses an item that is not an object with a name, before the caller sees it', async () => {
      for (const item of [null, 5, 'secret', [], {}, { metadata: null }, { metadata: { name: 7 } }]) {
        const seen: unknown[] = [];
        const broken = await brokenServer(() => JSON.stringify({ metadata: { resourceVersion: '5' }, items: [secret('s-00'), item] }));
        try {
          await assert.rejects(
            broken.client.list(SECRETS, {}, (listed: KubeObject) => {
              seen.push(listed);
              return listed;
            }),
            { code: 'KUBE_API_FAILED', message: /an item is not an object with a name/ },
            JSON.stringify(item),
          );
          assert.equal(seen.length, 1, JSON.stringify(item));
        } finally {
          await broken.close();
        }
      }
    });

    it('refuses a page without items, null included', async () => {
      for (const body of ['null', JSON.stringify({ kind: 'Status', metadata: {} })]) {
        const broken = await brokenServer(() => body);
        try {
          await assert.rejects(broken.client.list(SECRETS), { code: 'KUBE_API_FAILED', message: /has no items/ });
        } finally {
          await broken.close();
        }
      }
    });
  });
});
