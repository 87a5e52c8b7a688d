import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import request from 'supertest';
import { providerGroup } from '../../../../src/auth/user.js';
import { createProviders } from '../../../../src/providers/index.js';
import type { PasswordProvider, ProviderLoginResult, ProviderRegistry } from '../../../../src/providers/provider.js';
import type { Store } from '../../../../src/store/store.js';
import { PASSWORD, bearer, errorOf, startHarness } from './harness.js';
import type { Harness } from './harness.js';

async function metricValue(h: Harness, provider: string, result: string): Promise<number> {
  const metric = await h.registry.getSingleMetric('kubegate_login_total')!.get();
  return metric.values.find((value) => value.labels['provider'] === provider && value.labels['result'] === result)?.value ?? 0;
}

describe('POST /v1/login with the local provider', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    await h.addUser('alice');
    await h.addUser('dora', { enabled: false });
  });
  after(() => h.close());

  it('answers 201 with a login token, its expiry and the user, and the token works at once', async () => {
    const response = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'alice', password: PASSWORD }).expect(201);
    const { token, expiresAt, user } = response.body as { token: string; expiresAt: string; user: { id: string; username: string; groups: string[] } };
    assert.match(token, /^t-[a-z2-7]{12}:[a-z2-7]{54}$/);
    assert.equal(Date.parse(expiresAt), h.clock.ms + 16 * 3600 * 1000);
    assert.deepEqual(user, { id: user.id, username: 'alice', groups: [] });
    assert.equal(response.headers['cache-control'], 'no-store');
    const stored = await h.store.getToken(token.split(':')[0]!);
    assert.equal(stored?.kind, 'login');
    assert.equal(stored?.provider, 'local');
    assert.equal(stored?.clusterId, null);
    assert.ok(!stored?.tokenHash.includes(token.split(':')[1]!), 'only a hash of the secret is stored');
    const me = await request(h.app).get('/v1/me').set(bearer(token)).expect(200);
    assert.equal(me.body.username, 'alice');
    assert.equal(me.body.provider, 'local');
    assert.equal(await metricValue(h, 'local', 'success'), 1);
  });

  it('accepts a ttl as a duration or as seconds', async () => {
    const text = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'alice', password: PASSWORD, ttl: '1h30m' }).expect(201);
    assert.equal(Date.parse(text.body.expiresAt), h.clock.ms + 5400 * 1000);
    const seconds = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'alice', password: PASSWORD, ttl: 600 }).expect(201);
    assert.equal(Date.parse(seconds.body.expiresAt), h.clock.ms + 600 * 1000);
  });

  it('refuses a ttl above the API maximum (TTL_TOO_LONG) and a ttl that is not a duration (DURATION_INVALID), naming the field', async () => {
    const long = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'alice', password: PASSWORD, ttl: '91d' }).expect(400);
    assert.equal(errorOf(long.body).code, 'TTL_TOO_LONG');
    assert.equal(errorOf(long.body).field, 'ttl');
    for (const ttl of ['soon', '0', -5, 1.5]) {
      const bad = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'alice', password: PASSWORD, ttl }).expect(400);
      assert.equal(errorOf(bad.body).code, 'DURATION_INVALID');
      assert.equal(errorOf(bad.body).field, 'ttl');
    }
  });

  it('answers 401 LOGIN_FAILED alike for a wrong password and an unknown user, so usernames cannot be probed', async () => {
    const wrong = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'alice', password: 'not the password' }).expect(401);
    const unknown = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'nobody', password: 'not the password' }).expect(401);
    assert.deepEqual(wrong.body, unknown.body);
    assert.equal(errorOf(wrong.body).code, 'LOGIN_FAILED');
  });

  it('answers 403 USER_DISABLED for a disabled user, but only after the right password', async () => {
    const right = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'dora', password: PASSWORD }).expect(403);
    assert.equal(errorOf(right.body).code, 'USER_DISABLED');
    const wrong = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'dora', password: 'guess guess guess' }).expect(401);
    assert.equal(errorOf(wrong.body).code, 'LOGIN_FAILED');
  });

  it('answers 400 PROVIDER_UNKNOWN for a provider that is not configured', async () => {
    const response = await request(h.app).post('/v1/login').send({ provider: 'ldap', username: 'alice', password: PASSWORD }).expect(400);
    assert.deepEqual(errorOf(response.body), { code: 'PROVIDER_UNKNOWN', message: 'unknown identity provider', field: 'provider' });
  });

  it('refuses a username with control characters, which no provider can hold and some databases cannot store', async () => {
    const response = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'alice\u0000', password: PASSWORD }).expect(400);
    assert.equal(errorOf(response.body).field, 'username');
  });

  it('refuses an empty password as a bad request before any provider work', async () => {
    const response = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'alice', password: '' }).expect(400);
    assert.equal(errorOf(response.body).field, 'password');
  });

  it('never writes the password or the issued token secret to the log', async () => {
    const response = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'alice', password: PASSWORD }).expect(201);
    const secret = (response.body.token as string).split(':')[1]!;
    const all = h.logs.join('\n');
    assert.ok(!all.includes(PASSWORD));
    assert.ok(!all.includes(secret));
  });
});

describe('POST /v1/login rate limiting', () => {
  let h: Harness;
  beforeEach(async () => {
    await h?.close();
    h = await startHarness({ loginRateLimit: { maxFailures: 3, maxFailuresPerAddress: 4, windowSeconds: 60 } });
    await h.addUser('bob');
    await h.addUser('carol');
  });
  after(() => h.close());

  const login = (username: string, password: string) => request(h.app).post('/v1/login').send({ provider: 'local', username, password });

  it('refuses further attempts for a username after maxFailures, with Retry-After, even with the right password', async () => {
    for (let i = 0; i < 3; i++) await login('bob', 'wrong password!').expect(401);
    const limited = await login('bob', PASSWORD).expect(429);
    assert.equal(errorOf(limited.body).code, 'LOGIN_RATE_LIMITED');
    assert.equal(limited.headers['retry-after'], '60');
    h.clock.advance(45_000);
    assert.equal((await login('bob', PASSWORD).expect(429)).headers['retry-after'], '15');
    assert.equal(await metricValue(h, 'local', 'rate_limited'), 2);
    h.clock.advance(15_000);
    await login('bob', PASSWORD).expect(201);
  });

  it('counts username variants that differ only in case together, because providers such as LDAP ignore case', async () => {
    await login('bob', 'wrong password!').expect(401);
    await login('BOB', 'wrong password!').expect(401);
    await login('Bob', 'wrong password!').expect(401);
    await login('bob', PASSWORD).expect(429);
  });

  it('counts failures per client address too, with its own looser limit, so one client cannot spray many usernames', async () => {
    // Four different usernames from the same address: the address budget (4) is spent, while
    // no username reached its own limit (3).
    for (const username of ['bob', 'carol', 'nobody', 'dan']) await login(username, 'wrong password!').expect(401);
    const limited = await login('carol', PASSWORD).expect(429);
    assert.equal(errorOf(limited.body).code, 'LOGIN_RATE_LIMITED');
  });

  it('resets the username counter on success, but not the address counter', async () => {
    await login('bob', 'wrong password!').expect(401);
    await login('bob', 'wrong password!').expect(401);
    await login('bob', PASSWORD).expect(201);
    // The address has 2 failures left over; two more fill it.
    await login('carol', 'wrong password!').expect(401);
    await login('carol', 'wrong password!').expect(401);
    await login('bob', PASSWORD).expect(429);
  });

  it('logs one warning when a limit trips, naming the username and address but never the password', async () => {
    for (let i = 0; i < 3; i++) await login('bob', `wrong password ${i}`).expect(401);
    await login('bob', 'wrong password 3').expect(429);
    await login('bob', 'wrong password 4').expect(429);
    const warnings = h.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['msg'] === 'login rate limit reached: further attempts are refused until the window closes');
    assert.equal(warnings.length, 1, 'once per window, not once per refusal');
    assert.equal(warnings[0]?.['level'], 40);
    assert.equal(warnings[0]?.['limit'], 'username');
    assert.equal(warnings[0]?.['username'], 'bob');
    assert.equal(warnings[0]?.['provider'], 'local');
    assert.match(String(warnings[0]?.['address']), /127\.0\.0\.1/);
    assert.ok(!h.logs.join('\n').includes('wrong password'), 'no password in any log line');
  });

  it('lets an admin forget the failures of a username or an address (DELETE /v1/login-limits)', async () => {
    for (let i = 0; i < 3; i++) await login('bob', 'wrong password!').expect(401);
    await login('bob', PASSWORD).expect(429);
    await request(h.app).delete('/v1/login-limits?username=BOB').set(bearer(h.admin.token)).expect(204);
    await login('bob', PASSWORD).expect(201);

    // The address holds bob's 3 failures; one more fills it.
    await login('nobody', 'wrong password!').expect(401);
    await login('carol', PASSWORD).expect(429);
    await request(h.app).delete('/v1/login-limits?address=127.0.0.1').set(bearer(h.admin.token)).expect(204);
    await login('carol', PASSWORD).expect(201);
  });

  it('lets only admins reset limits, and refuses a reset that names nothing or something malformed', async () => {
    const carol = await request(h.app).post('/v1/login').send({ provider: 'local', username: 'carol', password: PASSWORD }).expect(201);
    const forbidden = await request(h.app).delete('/v1/login-limits?username=bob').set(bearer(carol.body.token)).expect(403);
    assert.equal(errorOf(forbidden.body).code, 'FORBIDDEN');
    await request(h.app).delete('/v1/login-limits?username=bob').expect(401);
    for (const query of ['', '?address=not-an-ip', '?username=bob&address=127.0.0.1', '?user=bob']) {
      const bad = await request(h.app).delete(`/v1/login-limits${query}`).set(bearer(h.admin.token)).expect(400);
      assert.equal(errorOf(bad.body).code, 'BAD_REQUEST', query);
    }
  });

  it('does not count an unknown provider or a bad request as a failed login', async () => {
    for (let i = 0; i < 5; i++) await request(h.app).post('/v1/login').send({ provider: 'nope', username: 'bob', password: 'x' }).expect(400);
    for (let i = 0; i < 5; i++) await request(h.app).post('/v1/login').send({ provider: 'local', username: 'bob' }).expect(400);
    await login('bob', PASSWORD).expect(201);
  });
});

describe('POST /v1/login behind a trusted reverse proxy (trustedProxies)', () => {
  let h: Harness;
  const login = (forwardedFor: string) =>
    request(h.app).post('/v1/login').set('X-Forwarded-For', forwardedFor).send({ provider: 'local', username: 'nobody', password: 'wrong password!' });

  beforeEach(async () => {
    await h?.close();
    h = await startHarness({ loginRateLimit: { maxFailures: 100, maxFailuresPerAddress: 2, windowSeconds: 60 }, trustedProxies: ['127.0.0.0/8', '::1/128', '10.0.0.0/8'] });
  });
  after(() => h.close());

  it('counts each client the trusted proxy names separately, so one address behind it does not lock out everyone', async () => {
    await login('198.51.100.1').expect(401);
    await login('198.51.100.1').expect(401);
    await login('198.51.100.1').expect(429);
    await login('198.51.100.2').expect(401);
  });

  it('skips trusted hops from the right and never believes what the client wrote before them', async () => {
    // The client forged a leftmost entry; the proxies appended the real client, then 10.1.2.3.
    await login('203.0.113.1, 198.51.100.7, 10.1.2.3').expect(401);
    await login('203.0.113.2, 198.51.100.7, 10.1.2.3').expect(401);
    await login('203.0.113.3, 198.51.100.7').expect(429);
  });
});

describe('POST /v1/login from a peer that is not a trusted proxy', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ loginRateLimit: { maxFailures: 100, maxFailuresPerAddress: 2, windowSeconds: 60 }, trustedProxies: ['10.0.0.0/8'] });
  });
  after(() => h.close());

  it('ignores X-Forwarded-For, since any client can send one', async () => {
    const login = (forwardedFor: string) =>
      request(h.app).post('/v1/login').set('X-Forwarded-For', forwardedFor).send({ provider: 'local', username: 'nobody', password: 'wrong password!' });
    await login('198.51.100.1').expect(401);
    await login('198.51.100.2').expect(401);
    await login('198.51.100.3').expect(429);
  });
});

/** A provider of our own interface that answers from a script, as LDAP would. */
function scriptedProvider(answer: (username: string, password: string) => ProviderLoginResult): PasswordProvider {
  return { name: 'corp', type: 'test', authenticatePassword: async (username, password) => answer(username, password) };
}

describe('POST /v1/login with a provider whose users are not local', () => {
  let h: Harness;
  let groups: string[] = [];
  before(async () => {
    const corp = scriptedProvider((username, password) =>
      password === 'ldap-password'
        ? { outcome: 'authenticated', identity: { providerUserId: `uid=${username},dc=corp`, loginName: username, displayName: `${username} (corp)`, groups } }
        : { outcome: 'unauthenticated' },
    );
    h = await startHarness({
      providers: async (store): Promise<ProviderRegistry> => {
        const real = await createProviders([], { store });
        return { get: (name) => (name === 'corp' ? corp : real.get(name)), list: () => [corp, ...real.list()], local: real.local };
      },
    });
  });
  after(() => h.close());

  it('creates a user and links the identity on first login, then finds the same user again', async () => {
    groups = [providerGroup('corp', 'ops')];
    const first = await request(h.app).post('/v1/login').send({ provider: 'corp', username: 'erin', password: 'ldap-password' }).expect(201);
    const second = await request(h.app).post('/v1/login').send({ provider: 'corp', username: 'erin', password: 'ldap-password' }).expect(201);
    assert.equal(first.body.user.id, second.body.user.id);
    assert.deepEqual(first.body.user.groups, ['corp:ops']);
    const link = await h.store.findIdentity('corp', 'uid=erin,dc=corp');
    assert.equal(link?.userId, first.body.user.id);
    const user = await h.store.getUser(first.body.user.id);
    assert.equal(user?.displayName, 'erin (corp)');
    assert.equal(user?.passwordHash, null);
    assert.equal((await h.store.getToken(first.body.token.split(':')[0]))?.provider, 'corp');
  });

  it('stores the provider groups so that the token carries them, and refreshes them on the next login', async () => {
    groups = [providerGroup('corp', 'ops'), providerGroup('corp', 'sre')];
    const login = await request(h.app).post('/v1/login').send({ provider: 'corp', username: 'erin', password: 'ldap-password' }).expect(201);
    const me = await request(h.app).get('/v1/me').set(bearer(login.body.token)).expect(200);
    assert.deepEqual(me.body.groups, ['corp:ops', 'corp:sre', 'system:authenticated']);
    groups = [providerGroup('corp', 'sre')];
    await request(h.app).post('/v1/login').send({ provider: 'corp', username: 'erin', password: 'ldap-password' }).expect(201);
    const after = await request(h.app).get('/v1/me').set(bearer(login.body.token)).expect(200);
    assert.deepEqual(after.body.groups, ['corp:sre', 'system:authenticated'], 'the cached answer was dropped when the groups changed');
  });

  it('gives a provider user whose login name is taken by a local user another username, never the local account', async () => {
    groups = [];
    const local = await h.addUser('frank');
    const response = await request(h.app).post('/v1/login').send({ provider: 'corp', username: 'frank', password: 'ldap-password' }).expect(201);
    assert.notEqual(response.body.user.id, local.user.id);
    assert.equal(response.body.user.username, 'frank@corp');
  });

  it('answers 401 for the provider saying unauthenticated', async () => {
    const response = await request(h.app).post('/v1/login').send({ provider: 'corp', username: 'erin', password: 'nope' }).expect(401);
    assert.equal(errorOf(response.body).code, 'LOGIN_FAILED');
  });
});

/** POSTs JSON on a fresh connection of its own; resolves with the status code. */
async function postJson(port: number, path: string, body: unknown, headers: Record<string, string> = {}): Promise<number> {
  const text = JSON.stringify(body);
  const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers } });
  req.end(text);
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  res.resume();
  await once(res, 'end');
  return res.statusCode ?? 0;
}

/**
 * The local provider behind a counter and a gate: every password verification is counted
 * (`onVerify` is told) and then held until the test opens the gate, so a burst can be
 * observed at the moment when every request is either answered or waiting on a verification.
 */
class GatedLocalProvider {
  verifications = 0;
  onVerify: () => void = () => undefined;
  readonly #gate: Promise<void>;
  open!: () => void;
  /** `holdAfterVerifying`: verify first, then wait at the gate with the answer in hand. */
  constructor(readonly holdAfterVerifying = false) {
    this.#gate = new Promise<void>((resolve) => {
      this.open = resolve;
    });
  }
  readonly providers = async (store: Store): Promise<ProviderRegistry> => {
    const real = await createProviders([], { store });
    const counting: PasswordProvider = {
      name: real.local.name,
      type: real.local.type,
      authenticatePassword: async (username, password) => {
        const verified = this.holdAfterVerifying ? await real.local.authenticatePassword(username, password) : undefined;
        this.verifications++;
        this.onVerify();
        await this.#gate;
        return verified ?? real.local.authenticatePassword(username, password);
      },
    };
    return { get: (name) => (name === counting.name ? counting : real.get(name)), list: () => [counting], local: real.local };
  };
}

describe('POST /v1/login under a concurrent burst (issue #16)', () => {
  it('verifies exactly maxFailures passwords when 170 wrong passwords for one account arrive at once, because the limit is reserved before verifying', async () => {
    const BURST = 170;
    const gated = new GatedLocalProvider();
    const h = await startHarness({ loginRateLimit: { maxFailures: 5, maxFailuresPerAddress: 100, windowSeconds: 300 }, providers: gated.providers });
    const server = http.createServer(h.app);
    try {
      await h.addUser('victim');
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      let answered = 0;
      // Every request is either answered or parked on a verification: the burst is fully in.
      const allIn = new Promise<void>((resolve) => {
        gated.onVerify = () => answered + gated.verifications === BURST && resolve();
      });
      const statuses = Promise.all(
        Array.from({ length: BURST }, async () => {
          const status = await postJson(port, '/v1/login', { provider: 'local', username: 'victim', password: 'a wrong guess' });
          answered++;
          gated.onVerify();
          return status;
        }),
      );
      await allIn;
      assert.equal(gated.verifications, 5, 'passwords verified while the burst was in flight');
      gated.open();
      const all = await statuses;
      assert.equal(all.filter((status) => status === 401).length, 5);
      assert.equal(all.filter((status) => status === 429).length, BURST - 5);
      assert.equal(gated.verifications, 5);
      assert.equal(await metricValue(h, 'local', 'rate_limited'), BURST - 5);
    } finally {
      server.close();
      await h.close();
    }
  });
});

describe('POST /v1/login while the password changes (issue #16.5)', () => {
  it('refuses a login whose password was verified just before an admin reset it, so the old password yields no fresh token', async () => {
    const gated = new GatedLocalProvider(true);
    const h = await startHarness({ providers: gated.providers });
    try {
      const victim = await h.addUser('victim');
      const verified = new Promise<void>((resolve) => {
        gated.onVerify = resolve;
      });
      const login = request(h.app).post('/v1/login').send({ provider: 'local', username: 'victim', password: PASSWORD }).then((response) => response);
      await verified;
      await request(h.app).patch(`/v1/users/${victim.user.id}`).set(bearer(h.admin.token)).send({ password: 'the reset password 42' }).expect(200);
      gated.open();
      const response = await login;
      assert.equal(response.status, 401);
      assert.equal(errorOf(response.body).code, 'LOGIN_FAILED');
      assert.equal((await h.store.listTokens({ userId: victim.user.id })).length, 1, 'no token but the one the test made');
    } finally {
      await h.close();
    }
  });
});
