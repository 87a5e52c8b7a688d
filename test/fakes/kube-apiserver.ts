/**
 * A strict fake kube-apiserver for tests (the real one cannot run here).
 *
 * Design note: it is strict where a real API server is strict and where kubegate could get
 * things wrong — authentication (401 Status JSON), impersonation header rules
 * (kube-identity.ts), Accept negotiation, 404 Status bodies, watch semantics
 * (resourceVersion, chunked newline-delimited events, teardown on client close), log
 * following, and exec and attach upgrades over WebSocket (v5/v4 channel protocols) and
 * SPDY/3.1 (kube-exec.ts), port-forward (spdy-portforward.ts), and a pod's `proxy`
 * subresource (an application that can hold its answer open). It records every request
 * exactly as it arrived (method, path, raw query, `rawHeaders`, the socket it came on, the
 * effective user, the answer's status) so proxy tests can compare what reached the
 * "cluster". It counts open sockets, watches, log streams, held proxy answers and exec,
 * attach and port-forward sessions so teardown can be proven. Tests can make it answer
 * upgrades with a non-101 response (403, a redirect, …) on a connection that stays usable,
 * as Go's server keeps it, so upgrade-smuggling attacks (CVE-2018-1002105) and redirect
 * following (CVE-2020-8559) are reproducible. It answers SubjectAccessReviews strictly, by
 * a policy each test sets, and records them (kube-access-review.ts), and validates and
 * answers SelfSubjectAccessReviews as the real server does (kube-self-access-review.ts).
 * Lists, of pods and of stored objects alike, are in key order and chunked with
 * `limit`/`continue` as the real server chunks them (kube-list-chunks.ts). It
 * serves HTTPS on 127.0.0.1 with a certificate from src/pki covering localhost, 127.0.0.1
 * and ::1.
 */
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { createCertificateAuthority, issueServingCertificate } from '../../src/pki/certificates.js';
import { readBearerToken, resolveIdentity } from './kube-identity.js';
import { answerSubjectAccessReview, denyAll, SUBJECT_ACCESS_REVIEW_PATH } from './kube-access-review.js';
import type { FakeAccessPolicy, RecordedSubjectAccessReview } from './kube-access-review.js';
import type { EffectiveUser, FakeUser } from './kube-identity.js';
import { attachSession, chooseWebsocketProtocol, execSession, WebsocketExecServer } from './kube-exec.js';
import type { AttachRequest, ExecRequest, StreamSession } from './kube-exec.js';
import { apiGroupList, coreV1Resources, groupDiscovery } from './kube-discovery.js';
import {
  acceptsJson,
  apiVersions,
  failureStatus,
  makePod,
  namespaceObject,
  objectNotFoundStatus,
  pathNotFoundStatus,
  podList,
  podTable,
  requestedTableVersion,
  versionInfo,
  withResourceVersion,
} from './kube-objects.js';
import type { FakePod, KubeStatus, KubeVersion } from './kube-objects.js';
import { OPENAPI_V2_PROTOBUF, openApiV2Document, openApiV2Protobuf, wantsOpenApiProtobuf } from './kube-openapi.js';
import { runSpdyExec } from './spdy-exec.js';
import { runSpdyPortForward, TUNNELED_PORT_FORWARD_PROTOCOL, WebsocketPortForwardServer } from './spdy-portforward.js';
import { answerSelfSubjectAccessReview, SELF_SUBJECT_ACCESS_REVIEW_PATH } from './kube-authorization.js';
import { answerProxyIdentityAccessReview, SELF_SUBJECT_ACCESS_REVIEWS_PATH } from './kube-self-access-review.js';
import { FakeListChunker } from './kube-list-chunks.js';
import { FakeResourceStore } from './kube-resources.js';
import type { FakeObject } from './kube-resources.js';
import type { FakeJwtAuthenticator } from './kube-jwt-authn.js';
import { FakeWebhookAuthenticator } from './kube-webhook-authn.js';
import type { FakeWebhookAuthnConfig } from './kube-webhook-authn.js';

export type { EffectiveUser, FakeUser } from './kube-identity.js';
export type { FakePod, KubeStatus, KubeVersion, MakePodOptions } from './kube-objects.js';
export { makePod } from './kube-objects.js';
export type { FakeObject } from './kube-resources.js';
export type { FakeWebhookAuthnConfig, RecordedReview } from './kube-webhook-authn.js';
export type { FakeAccessPolicy, RecordedSubjectAccessReview } from './kube-access-review.js';

export interface FakeKubeApiServerOptions {
  /** The bearer token callers (the proxy) must present. */
  readonly token: string;
  /** Who that token authenticates as. Default `kubegate-proxy` in `system:authenticated`. */
  readonly tokenUser?: FakeUser;
  /** What /version reports; /usr/bin/kubectl picks its client by `minor`. Default 1.32. */
  readonly version?: KubeVersion;
  /** Initial pods. Default: `web-0` and `web-1` (Running) in `default`. */
  readonly pods?: readonly FakePod[];
  /** Namespaces that exist. Default: `default`, `kube-system` and those of the pods. */
  readonly namespaces?: readonly string[];
  /** Also accept client certificates signed by this CA (CN = user, O = groups). */
  readonly clientCaPem?: string;
  /** When false, any Impersonate-User is forbidden (403), as for a caller without the RBAC verb. */
  readonly allowImpersonation?: boolean;
  /** When false, the token's identity may not create SubjectAccessReviews (403). Default true. */
  readonly allowAccessReviews?: boolean;
  /** How SubjectAccessReviews are decided. Default: nothing is allowed. Also `useAccessPolicy`. */
  readonly accessPolicy?: FakeAccessPolicy;
  /** Initial log lines of a pod. Default: two lines naming the pod. */
  readonly logLines?: (pod: FakePod) => readonly string[];
  /**
   * Authenticate other bearer tokens with a TokenReview webhook, as kube-apiserver does with
   * `--authentication-token-webhook-config-file` (see kube-webhook-authn.ts). Can also be
   * set later with `useWebhookAuthenticator`.
   */
  readonly webhook?: FakeWebhookAuthnConfig;
}

/** How to answer every upgrade request instead of switching protocols. */
export interface FakeUpgradeAnswer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface RecordedUpgrade {
  /** The `Upgrade` header as sent (e.g. `websocket`, `SPDY/3.1`). */
  readonly upgradeHeader: string;
  /** The chosen subprotocol (WebSocket) or X-Stream-Protocol-Version (SPDY), when switched. */
  readonly protocol: string | undefined;
}

export interface RecordedRequest {
  /** 1-based order of arrival. */
  readonly id: number;
  readonly method: string;
  /** The raw request target, e.g. `/api/v1/pods?watch=1`. */
  readonly url: string;
  /** The path part, not decoded. */
  readonly path: string;
  /** Everything after `?`, not decoded; '' when there is none. */
  readonly rawQuery: string;
  /** Header names and values exactly as received, in order (node's `req.rawHeaders`). */
  readonly rawHeaders: readonly string[];
  readonly headers: IncomingHttpHeaders;
  /** The TLS connection it came on (1-based, in accept order). */
  readonly socketId: number;
  /** The effective user after authentication and impersonation; undefined when refused. */
  readonly user: EffectiveUser | undefined;
  /** The status answered (101 for a switched upgrade); undefined while not yet answered. */
  readonly status: number | undefined;
  readonly upgrade: RecordedUpgrade | undefined;
  readonly bodyLength: number;
  readonly bodySha256: string;
  /** The first MiB of the request body. */
  readonly body: Buffer;
}

type MutableRecord = { -readonly [K in keyof RecordedRequest]: RecordedRequest[K] };

export type PodEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface Watch {
  readonly namespace: string | undefined;
  readonly selector: (pod: FakePod) => boolean;
  readonly table: 'v1' | 'v1beta1' | undefined;
  readonly response: ServerResponse;
}

interface LogFollower {
  readonly key: string;
  readonly response: ServerResponse;
}

interface StoredEvent {
  readonly resourceVersion: number;
  readonly type: PodEventType;
  readonly pod: FakePod;
}

const recordedBodyLimitBytes = 1024 * 1024;
const defaultVersion: KubeVersion = { major: '1', minor: '32', gitVersion: 'v1.32.4' };
const defaultTokenUser: FakeUser = { username: 'kubegate-proxy', groups: ['system:authenticated'], extra: {} };
const podPath = /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+)(?:\/([^/]+))?)?$/;
/** `pods/[scheme:]name[:port]/proxy[/path]`. */
const podProxyPath = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/(?:https?:)?([^/:]+)(?::[^/]*)?\/proxy(\/.*)?$/;

/** Starts a fake API server on 127.0.0.1 with a fresh CA. */
export async function startFakeKubeApiServer(options: FakeKubeApiServerOptions): Promise<FakeKubeApiServer> {
  if (typeof options.token !== 'string' || options.token === '') throw new TypeError('token must be a non-empty string');
  const ca = await createCertificateAuthority({ commonName: 'fake-kube-apiserver-ca', validityDays: 1 });
  const serving = await issueServingCertificate(ca, { commonName: 'kube-apiserver', sans: ['localhost', '127.0.0.1', '::1'], validityDays: 1 });
  const server = createServer({
    cert: serving.certPem,
    key: serving.keyPem,
    ...(options.clientCaPem === undefined ? {} : { requestCert: true, rejectUnauthorized: false, ca: options.clientCaPem }),
  });
  const fake = new FakeKubeApiServer(server, ca.certPem, options);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return fake;
}

export class FakeKubeApiServer {
  /** The CA that signed the serving certificate; put it into kubeconfigs. */
  readonly caPem: string;
  /** Every request in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** Every valid SubjectAccessReview, in arrival order. */
  readonly subjectAccessReviews: RecordedSubjectAccessReview[] = [];
  private accessPolicy: FakeAccessPolicy;

  private readonly server: Server;
  private readonly options: FakeKubeApiServerOptions;
  private readonly version: KubeVersion;
  private readonly tokenUser: FakeUser;
  private readonly sockets = new Map<Duplex, number>();
  private readonly podsByKey = new Map<string, FakePod>();
  private readonly events: StoredEvent[] = [];
  /** Pod lists in chunks (`limit`/`continue`), as kube-apiserver serves them. */
  private readonly podChunks = new FakeListChunker<FakePod>();
  private readonly watches = new Set<Watch>();
  private readonly logFollowers = new Set<LogFollower>();
  private readonly proxyStreams = new Set<ServerResponse>();
  private readonly logs = new Map<string, string[]>();
  private readonly websocketExec = new WebsocketExecServer();
  private readonly websocketPortForward = new WebsocketPortForwardServer();
  private readonly notifier = new EventEmitter();
  private nextSocketId = 1;
  private resourceVersion = 1000;
  private upgradeAnswer: FakeUpgradeAnswer | undefined;
  private webhookAuthenticator: FakeWebhookAuthenticator | undefined;
  private jwtAuthenticator: FakeJwtAuthenticator | undefined;
  /** Namespaces, Secrets, RBAC, Deployments… and Rancher's ClusterAuthTokens/ClusterUserAttributes (kube-resources.ts). */
  readonly resources: FakeResourceStore;
  private execSessions = 0;
  private attachSessions = 0;
  private portForwardSessions = 0;
  private closed = false;
  /** The bearer token that authenticates as `tokenUser` (options.token until `acceptToken`). */
  private acceptedToken: string;

  constructor(server: Server, caPem: string, options: FakeKubeApiServerOptions) {
    this.server = server;
    this.caPem = caPem;
    this.options = options;
    this.version = options.version ?? defaultVersion;
    this.tokenUser = options.tokenUser ?? defaultTokenUser;
    this.accessPolicy = options.accessPolicy ?? denyAll;
    this.acceptedToken = options.token;
    this.allowImpersonation = options.allowImpersonation ?? true;
    const pods = options.pods ?? [makePod('web-0'), makePod('web-1')];
    for (const pod of pods) this.store(pod);
    this.resources = new FakeResourceStore(
      () => ++this.resourceVersion,
      () => this.resourceVersion,
      () => this.changed(),
    );
    for (const name of new Set(options.namespaces ?? ['default', 'kube-system', ...pods.map((pod) => pod.metadata.namespace)])) this.addNamespace(name);
    if (options.webhook !== undefined) this.webhookAuthenticator = new FakeWebhookAuthenticator(options.webhook);
    server.on('secureConnection', (socket: TLSSocket) => this.trackSocket(socket));
    server.on('request', (request: IncomingMessage, response: ServerResponse) => this.onRequest(request, response));
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(request, socket, head));
    server.on('tlsClientError', () => undefined);
  }

  /** `https://127.0.0.1:<port>` */
  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Watches whose response is still open. */
  get openWatches(): number {
    return this.watches.size;
  }

  /** `logs -f` streams still open. */
  get openLogStreams(): number {
    return this.logFollowers.size;
  }

  /** Answers of a pod's `proxy/stream` still open. */
  get openProxyStreams(): number {
    return this.proxyStreams.size;
  }

  /** Exec sessions (WebSocket or SPDY) still connected. */
  get openExecSessions(): number {
    return this.execSessions;
  }

  /** Attach sessions (WebSocket or SPDY) still connected. */
  get openAttachSessions(): number {
    return this.attachSessions;
  }

  /** Port-forward sessions (SPDY, or SPDY tunnelled in a WebSocket) still connected. */
  get openPortForwardSessions(): number {
    return this.portForwardSessions;
  }

  /** TLS connections still open, including upgraded ones. */
  openSockets(): number {
    return this.sockets.size;
  }

  /** TLS connections accepted since start. */
  connectionCount(): number {
    return this.nextSocketId - 1;
  }

  /** The current pods, optionally of one namespace. */
  pods(namespace?: string): FakePod[] {
    return [...this.podsByKey.values()].filter((pod) => namespace === undefined || pod.metadata.namespace === namespace);
  }

  /** Stores (ADDED/MODIFIED) or removes (DELETED) a pod and sends the event to matching watches. */
  emitPodEvent(type: PodEventType, pod: FakePod): FakePod {
    const stored = type === 'DELETED' ? this.remove(pod) : this.store(pod);
    const event: StoredEvent = { resourceVersion: Number(stored.metadata.resourceVersion), type, pod: stored };
    this.events.push(event);
    for (const watch of this.watches) this.sendEvent(watch, event);
    return stored;
  }

  /** Appends a line to a pod's log and to every `logs -f` following it. */
  appendLogLine(namespace: string, podName: string, line: string): void {
    const key = `${namespace}/${podName}`;
    this.logs.set(key, [...(this.logs.get(key) ?? []), line]);
    for (const follower of this.logFollowers) if (follower.key === key) follower.response.write(`${line}\n`);
  }

  /**
   * From now on only `token` authenticates as the token user: the proxy's registered token
   * is then refused with 401, as when its ServiceAccount token was rotated or deleted.
   */
  acceptToken(token: string): void {
    if (token === '') throw new TypeError('token must be a non-empty string');
    this.acceptedToken = token;
  }

  /** From now on, authenticate unknown bearer tokens with this webhook (undefined: stop). */
  useWebhookAuthenticator(config: FakeWebhookAuthnConfig | undefined): FakeWebhookAuthenticator | undefined {
    this.webhookAuthenticator = config === undefined ? undefined : new FakeWebhookAuthenticator(config);
    return this.webhookAuthenticator;
  }

  /** From now on, decide SubjectAccessReviews with `policy`. */
  useAccessPolicy(policy: FakeAccessPolicy): void {
    this.accessPolicy = policy;
  }

  /** From now on, authenticate JWT bearer tokens with this authenticator first (undefined: stop). */
  useJwtAuthenticator(authenticator: FakeJwtAuthenticator | undefined): void {
    this.jwtAuthenticator = authenticator;
  }

  /** The webhook authenticator in use, with its recorded reviews. */
  get webhook(): FakeWebhookAuthenticator | undefined {
    return this.webhookAuthenticator;
  }

  /** Adds an Active namespace unless it exists (creates into a missing one are 404). */
  addNamespace(name: string): void {
    if (!this.resources.namespaceExists(name)) this.resources.put('namespaces', namespaceObject(name));
  }

  /** Stored objects of a resource (`secrets`, `clusterauthtokens`…), optionally of one namespace. */
  objects(plural: string, namespace?: string): FakeObject[] {
    return this.resources.list(plural, namespace);
  }

  /** Answer every later upgrade request with this instead of 101; undefined restores normal upgrades. */
  answerUpgradesWith(answer: FakeUpgradeAnswer | undefined): void {
    this.upgradeAnswer = answer;
  }

  /**
   * While true, every request is answered 503 ServiceUnavailable (an API server whose storage
   * is down), after it is recorded: for tests of clients that must retry.
   */
  unavailable = false;

  /**
   * While true, a request that arrives on a connection which already carried one is recorded
   * (unanswered) and its connection closed without an answer: an idle timeout — the server's
   * own, or a load balancer's in front of it — that fires just as the client reuses the
   * connection. A connection's first request is served as usual.
   */
  closeReusedConnections = false;

  /** While false, any Impersonate-User is forbidden (403 Status), as for a caller without the RBAC verb. */
  allowImpersonation: boolean;

  /** Resolves with the first recorded request (past or future) that matches. */
  async waitForRequest(predicate: (request: RecordedRequest) => boolean, timeoutMs = 5000): Promise<RecordedRequest> {
    await this.waitUntil(() => this.requests.some(predicate), timeoutMs);
    return this.requests.find(predicate)!;
  }

  /** Polls until the condition holds (e.g. `() => fake.openWatches === 0`). */
  async waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!condition()) {
      if (performance.now() > deadline) throw new Error(`fake kube-apiserver: condition not met within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.notifier.off('change', wake);
          resolve();
        };
        const timer = setTimeout(wake, 10);
        this.notifier.on('change', wake);
      });
    }
  }

  /**
   * Closes every connection that carries no request now, as the server's keep-alive idle
   * timeout does (kube-apiserver's is 90 s); upgraded connections and open watches stay.
   */
  closeIdleConnections(): void {
    this.server.closeIdleConnections();
  }

  /** Destroys every connection and stream and stops listening. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.websocketExec.close();
    this.websocketPortForward.close();
    for (const watch of this.watches) watch.response.destroy();
    this.resources.destroyWatches();
    for (const follower of this.logFollowers) follower.response.destroy();
    for (const stream of this.proxyStreams) stream.destroy();
    for (const socket of this.sockets.keys()) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- connections and recording -------------------------------------------------------------

  private trackSocket(socket: Duplex): void {
    if (this.sockets.has(socket)) return; // re-attached after a refused upgrade
    this.sockets.set(socket, this.nextSocketId++);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.changed();
    });
  }

  private changed(): void {
    this.notifier.emit('change');
  }

  private record(request: IncomingMessage, socket: Duplex): MutableRecord {
    const url = request.url ?? '/';
    const queryIndex = url.indexOf('?');
    const record: MutableRecord = {
      id: this.requests.length + 1,
      method: request.method ?? '',
      url,
      path: queryIndex === -1 ? url : url.slice(0, queryIndex),
      rawQuery: queryIndex === -1 ? '' : url.slice(queryIndex + 1),
      rawHeaders: [...request.rawHeaders],
      headers: { ...request.headers },
      socketId: this.sockets.get(socket) ?? 0,
      user: undefined,
      status: undefined,
      upgrade: undefined,
      bodyLength: 0,
      bodySha256: createHash('sha256').digest('hex'),
      body: Buffer.alloc(0),
    };
    this.requests.push(record);
    this.changed();
    return record;
  }

  private async readBody(request: IncomingMessage, record: MutableRecord): Promise<Buffer> {
    const hash = createHash('sha256');
    const kept: Buffer[] = [];
    let keptBytes = 0;
    for await (const chunk of request as AsyncIterable<Buffer>) {
      hash.update(chunk);
      record.bodyLength += chunk.length;
      if (keptBytes < recordedBodyLimitBytes) {
        const slice = chunk.subarray(0, recordedBodyLimitBytes - keptBytes);
        kept.push(slice);
        keptBytes += slice.length;
      }
    }
    record.bodySha256 = hash.digest('hex');
    record.body = Buffer.concat(kept);
    return record.body;
  }

  // --- plain requests ------------------------------------------------------------------------

  private onRequest(request: IncomingMessage, response: ServerResponse): void {
    const socketId = this.sockets.get(request.socket);
    const reused = this.requests.some((earlier) => earlier.socketId === socketId);
    const record = this.record(request, request.socket);
    if (this.closeReusedConnections && reused) {
      request.socket.destroy();
      return;
    }
    response.on('close', () => this.changed());
    this.readBody(request, record)
      .then(async (body) => {
        const jwtUser = await this.jwtUserOf(request);
        this.route(request, response, record, body, jwtUser === undefined ? await this.webhookUserOf(request) : undefined, jwtUser);
      })
      .catch(() => {
        if (!response.headersSent) this.sendStatus(response, record, failureStatus(500, 'InternalError', 'fake kube-apiserver failed'));
        else response.destroy();
      });
  }

  /** For a bearer token other than the configured one, what the webhook authenticator says. */
  private async webhookUserOf(request: IncomingMessage): Promise<FakeUser | undefined> {
    const webhook = this.webhookAuthenticator;
    if (webhook === undefined) return undefined;
    const token = readBearerToken(request);
    if (token === undefined || token === this.acceptedToken) return undefined;
    return webhook.authenticate(token);
  }

  /** For a bearer token other than the configured one, what the JWT authenticator says (undefined: not a valid JWT). */
  private async jwtUserOf(request: IncomingMessage): Promise<FakeUser | undefined> {
    const token = readBearerToken(request);
    if (this.jwtAuthenticator === undefined || token === undefined || token === this.acceptedToken) return undefined;
    return this.jwtAuthenticator.authenticate(token).catch(() => undefined);
  }

  private route(request: IncomingMessage, response: ServerResponse, record: MutableRecord, body: Buffer, webhookUser?: FakeUser, jwtUser?: FakeUser): void {
    if (this.unavailable) {
      this.sendStatus(response, record, failureStatus(503, 'ServiceUnavailable', 'the server is currently unable to handle the request'));
      return;
    }
    const identity = resolveIdentity(request, { ...this.identityOptions(), webhookUser, jwtUser });
    if (!identity.ok) {
      this.send(response, record, identity.status, identity.contentType, identity.body);
      return;
    }
    record.user = identity.user;
    const accept = request.headers.accept;
    const method = record.method;
    const query = new URLSearchParams(record.rawQuery);
    const path = record.path;
    // Served before the Accept check: kubectl asks for the protobuf form only.
    if (path === '/openapi/v2') {
      return this.onlyGet(method, response, record, () =>
        wantsOpenApiProtobuf(accept)
          ? this.send(response, record, 200, OPENAPI_V2_PROTOBUF, openApiV2Protobuf(this.version.gitVersion))
          : this.sendJson(response, record, 200, openApiV2Document(this.version.gitVersion)),
      );
    }
    if (!acceptsJson(accept)) {
      this.sendStatus(response, record, failureStatus(406, 'NotAcceptable', `only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf`));
      return;
    }

    if (['/healthz', '/livez', '/readyz'].includes(path)) return this.onlyGet(method, response, record, () => this.send(response, record, 200, 'text/plain; charset=utf-8', 'ok'));
    if (path === '/version') return this.onlyGet(method, response, record, () => this.sendJson(response, record, 200, versionInfo(this.version)));
    if (path === '/api') return this.onlyGet(method, response, record, () => this.sendJson(response, record, 200, apiVersions(`127.0.0.1:${this.port}`)));
    if (path === '/apis') return this.onlyGet(method, response, record, () => this.sendJson(response, record, 200, apiGroupList()));
    if (path === '/api/v1') return this.onlyGet(method, response, record, () => this.sendJson(response, record, 200, coreV1Resources()));
    const group = groupDiscovery(path);
    if (group !== undefined) return this.onlyGet(method, response, record, () => this.sendJson(response, record, 200, group));
    if (path === SUBJECT_ACCESS_REVIEW_PATH) {
      const answer = answerSubjectAccessReview(method, body, identity.user, this.options.allowAccessReviews ?? true, this.accessPolicy, (review) => {
        this.subjectAccessReviews.push(review);
        this.changed();
      });
      return this.sendJson(response, record, answer.status, answer.body);
    }
    // The proxy's own identity's rights (impersonation, access reviews) are flags of the fake,
    // not RBAC objects: its self reviews are answered from them; everyone else's from RBAC.
    if (path === SELF_SUBJECT_ACCESS_REVIEWS_PATH && !identity.user.impersonated && identity.user.authenticatedBy === 'token') {
      if (method !== 'POST') return this.sendMethodNotAllowed(response, record);
      const review = answerProxyIdentityAccessReview({
        contentType: request.headers['content-type'],
        body,
        user: identity.user,
        impersonationAllowed: this.allowImpersonation,
        accessReviewsAllowed: this.options.allowAccessReviews ?? true,
      });
      return this.sendJson(response, record, review.status, review.body);
    }
    if (path === '/api/v1/pods') return this.onlyGet(method, response, record, () => this.listOrWatchPods(request, response, record, query, undefined));
    const review = SELF_SUBJECT_ACCESS_REVIEW_PATH.exec(path);
    if (review !== null) {
      const answer = answerSelfSubjectAccessReview(review[1]!, method, body, identity.user, (plural) => this.resources.list(plural));
      return this.sendJson(response, record, answer.status, answer.body);
    }
    const resource = this.resources.match(path);
    if (resource !== undefined) {
      const answer = this.resources.handle({ method, path, query, contentType: request.headers['content-type'], body, response }, resource);
      if ('streamed' in answer) {
        record.status = 200;
        return;
      }
      return this.sendJson(response, record, answer.status, answer.body);
    }

    const proxyMatch = podProxyPath.exec(path);
    if (proxyMatch !== null) return this.proxyToPod(response, record, decodeURIComponent(proxyMatch[1]!), decodeURIComponent(proxyMatch[2]!), proxyMatch[3] ?? '/');
    const podMatch = podPath.exec(path);
    if (podMatch === null) return this.sendStatus(response, record, pathNotFoundStatus());
    const namespace = decodeURIComponent(podMatch[1]!);
    const name = podMatch[2] === undefined ? undefined : decodeURIComponent(podMatch[2]);
    const subresource = podMatch[3];
    if (name === undefined) {
      if (method === 'GET') return this.listOrWatchPods(request, response, record, query, namespace);
      if (method === 'POST') return this.createPod(response, record, namespace, body);
      return this.sendMethodNotAllowed(response, record);
    }
    const pod = this.podsByKey.get(`${namespace}/${name}`);
    if (subresource === undefined) {
      if (method !== 'GET' && method !== 'DELETE') return this.sendMethodNotAllowed(response, record);
      if (pod === undefined) return this.sendStatus(response, record, objectNotFoundStatus('pods', name));
      if (method === 'DELETE') {
        this.emitPodEvent('DELETED', pod);
        return this.sendJson(response, record, 200, pod);
      }
      const table = requestedTableVersion(accept);
      return table === undefined ? this.sendJson(response, record, 200, pod) : this.sendJson(response, record, 200, podTable([pod], pod.metadata.resourceVersion, table));
    }
    if (subresource === 'log') {
      return this.onlyGet(method, response, record, () => (pod === undefined ? this.sendStatus(response, record, objectNotFoundStatus('pods', name)) : this.streamLog(response, record, pod, query)));
    }
    if (subresource === 'exec' || subresource === 'attach' || subresource === 'portforward') {
      return this.sendStatus(response, record, failureStatus(400, 'BadRequest', 'Upgrade request required'));
    }
    return this.sendStatus(response, record, pathNotFoundStatus());
  }

  private identityOptions(): Parameters<typeof resolveIdentity>[1] {
    return {
      token: this.acceptedToken,
      tokenUser: this.tokenUser,
      clientCertificates: this.options.clientCaPem !== undefined,
      allowImpersonation: this.allowImpersonation,
    };
  }

  private onlyGet(method: string, response: ServerResponse, record: MutableRecord, handler: () => void): void {
    if (method !== 'GET') return this.sendMethodNotAllowed(response, record);
    handler();
  }

  private listOrWatchPods(request: IncomingMessage, response: ServerResponse, record: MutableRecord, query: URLSearchParams, namespace: string | undefined): void {
    const selector = parseSelectors(query);
    if (typeof selector === 'string') return this.sendStatus(response, record, failureStatus(400, 'BadRequest', selector));
    const table = requestedTableVersion(request.headers.accept);
    if (isTrue(query.get('watch'))) return this.watchPods(response, record, query, namespace, selector, table);
    const fieldSelector = query.get('fieldSelector') ?? '';
    const page = this.podChunks.page({
      prefix: `pods/${namespace === undefined ? '' : `${namespace}/`}`,
      selector: `${query.get('labelSelector') ?? ''}${fieldSelector === '' ? '' : `|${fieldSelector}`}`,
      current: () => this.pods(namespace).filter(selector),
      resourceVersion: String(this.resourceVersion),
      query,
    });
    if (!page.ok) return this.sendStatus(response, record, page.status);
    const { resourceVersion } = page.metadata;
    const list = table === undefined ? podList(page.items, resourceVersion) : podTable(page.items, resourceVersion, table);
    this.sendJson(response, record, 200, { ...list, metadata: page.metadata });
  }

  private watchPods(
    response: ServerResponse,
    record: MutableRecord,
    query: URLSearchParams,
    namespace: string | undefined,
    selector: (pod: FakePod) => boolean,
    table: 'v1' | 'v1beta1' | undefined,
  ): void {
    const fromVersion = query.get('resourceVersion');
    const watch: Watch = { namespace, selector, table, response };
    record.status = 200;
    response.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Audit-Id': randomUUID() });
    response.flushHeaders();
    if (fromVersion === null || fromVersion === '' || fromVersion === '0') {
      for (const pod of this.pods(namespace).filter(selector)) {
        this.sendEvent(watch, { resourceVersion: Number(pod.metadata.resourceVersion), type: 'ADDED', pod });
      }
    } else {
      for (const event of this.events) if (event.resourceVersion > Number(fromVersion)) this.sendEvent(watch, event);
    }
    this.watches.add(watch);
    this.changed();
    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? '0');
    const timer = timeoutSeconds > 0 ? setTimeout(() => response.end(), timeoutSeconds * 1000) : undefined;
    response.on('close', () => {
      if (timer !== undefined) clearTimeout(timer);
      this.watches.delete(watch);
      this.changed();
    });
  }

  private sendEvent(watch: Watch, event: StoredEvent): void {
    const { pod } = event;
    if (watch.namespace !== undefined && pod.metadata.namespace !== watch.namespace) return;
    if (!watch.selector(pod)) return;
    const object = watch.table === undefined ? pod : podTable([pod], pod.metadata.resourceVersion, watch.table);
    watch.response.write(`${JSON.stringify({ type: event.type, object })}\n`);
  }

  private createPod(response: ServerResponse, record: MutableRecord, namespace: string, body: Buffer): void {
    let input: { metadata?: { name?: unknown; labels?: Record<string, string> }; spec?: { containers?: Array<{ name?: unknown }> } };
    try {
      input = JSON.parse(body.toString('utf8')) as typeof input;
    } catch {
      return this.sendStatus(response, record, failureStatus(400, 'BadRequest', 'the request body is not valid JSON'));
    }
    const name = input.metadata?.name;
    if (typeof name !== 'string' || name === '') return this.sendStatus(response, record, failureStatus(422, 'Invalid', 'Pod "" is invalid: metadata.name: Required value: name or generateName is required'));
    if (this.podsByKey.has(`${namespace}/${name}`)) {
      return this.sendStatus(response, record, failureStatus(409, 'AlreadyExists', `pods "${name}" already exists`, { name, kind: 'pods' }));
    }
    const containers = (input.spec?.containers ?? []).map((container) => String(container.name ?? 'app'));
    const pod = makePod(name, { namespace, containers: containers.length > 0 ? containers : ['app'], phase: 'Pending', ...(input.metadata?.labels ? { labels: input.metadata.labels } : {}) });
    this.sendJson(response, record, 201, this.emitPodEvent('ADDED', pod));
  }

  private streamLog(response: ServerResponse, record: MutableRecord, pod: FakePod, query: URLSearchParams): void {
    const containers = pod.spec.containers.map((container) => container.name);
    const container = query.get('container');
    if (container === null && containers.length > 1) {
      return this.sendStatus(response, record, failureStatus(400, 'BadRequest', `a container name must be specified for pod ${pod.metadata.name}, choose one of: [${containers.join(' ')}]`));
    }
    if (container !== null && !containers.includes(container)) {
      return this.sendStatus(response, record, failureStatus(400, 'BadRequest', `container ${container} is not valid for pod ${pod.metadata.name}`));
    }
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    if (!this.logs.has(key)) this.logs.set(key, [...(this.options.logLines?.(pod) ?? [`${pod.metadata.name} log line 1`, `${pod.metadata.name} log line 2`])]);
    let lines = this.logs.get(key)!;
    const tailLines = query.get('tailLines');
    if (tailLines !== null) lines = lines.slice(-Math.max(0, Number(tailLines)));
    record.status = 200;
    response.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private', 'Audit-Id': randomUUID() });
    for (const line of lines) response.write(`${line}\n`);
    if (!isTrue(query.get('follow'))) {
      response.end();
      return;
    }
    const follower: LogFollower = { key, response };
    this.logFollowers.add(follower);
    this.changed();
    response.on('close', () => {
      this.logFollowers.delete(follower);
      this.changed();
    });
  }

  /**
   * `pods/<name>/proxy/<path>`: kube-apiserver relays any method to the pod's address; each
   * running fake pod serves an application there that answers `<pod> <METHOD> <path>`, except
   * on `/stream`, where it starts an answer and holds it open until the client goes away
   * (a long poll or event stream: counted in `openProxyStreams`).
   */
  private proxyToPod(response: ServerResponse, record: MutableRecord, namespace: string, name: string, podPathPart: string): void {
    const pod = this.podsByKey.get(`${namespace}/${name}`);
    if (pod === undefined) return this.sendStatus(response, record, objectNotFoundStatus('pods', name));
    if (pod.status.phase !== 'Running') return this.sendStatus(response, record, failureStatus(503, 'ServiceUnavailable', `pod ${name} is not running (phase ${pod.status.phase})`));
    if (podPathPart !== '/stream') return this.send(response, record, 200, 'text/plain; charset=utf-8', `${name} ${record.method} ${podPathPart}\n`);
    record.status = 200;
    response.writeHead(200, { 'Content-Type': 'text/event-stream' });
    response.write(`data: ${name} stream open\n\n`);
    this.proxyStreams.add(response);
    this.changed();
    response.on('close', () => {
      this.proxyStreams.delete(response);
      this.changed();
    });
  }

  private send(response: ServerResponse, record: MutableRecord, status: number, contentType: string, body: string | Buffer): void {
    record.status = status;
    response.writeHead(status, {
      'Content-Type': contentType,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-cache, private',
      'X-Content-Type-Options': 'nosniff',
      'Audit-Id': randomUUID(),
    });
    response.end(body);
  }

  private sendJson(response: ServerResponse, record: MutableRecord, status: number, object: unknown): void {
    this.send(response, record, status, 'application/json', JSON.stringify(object));
  }

  private sendStatus(response: ServerResponse, record: MutableRecord, status: KubeStatus): void {
    this.sendJson(response, record, status.code, status);
  }

  private sendMethodNotAllowed(response: ServerResponse, record: MutableRecord): void {
    this.sendStatus(response, record, failureStatus(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
  }

  private store(pod: FakePod): FakePod {
    this.resourceVersion += 1;
    const stored = withResourceVersion(pod, String(this.resourceVersion));
    this.podsByKey.set(`${pod.metadata.namespace}/${pod.metadata.name}`, stored);
    return stored;
  }

  private remove(pod: FakePod): FakePod {
    this.resourceVersion += 1;
    this.podsByKey.delete(`${pod.metadata.namespace}/${pod.metadata.name}`);
    return withResourceVersion(pod, String(this.resourceVersion));
  }

  // --- upgrades ------------------------------------------------------------------------------

  private onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const record = this.record(request, socket);
    socket.on('error', () => socket.destroy());
    const upgradeHeader = request.headers.upgrade ?? '';
    record.upgrade = { upgradeHeader, protocol: undefined };

    const identity = resolveIdentity(request, this.identityOptions());
    if (!identity.ok) return this.refuseUpgrade(socket, head, record, identity.status, { 'Content-Type': identity.contentType }, identity.body);
    record.user = identity.user;
    if (this.upgradeAnswer !== undefined) {
      const answer = this.upgradeAnswer;
      return this.refuseUpgrade(socket, head, record, answer.status, answer.headers ?? {}, answer.body ?? '');
    }
    const refuseWithStatus = (status: KubeStatus): void =>
      this.refuseUpgrade(socket, head, record, status.code, { 'Content-Type': 'application/json' }, JSON.stringify(status));

    const podMatch = podPath.exec(record.path);
    const subresource = podMatch?.[3];
    if (podMatch === null || podMatch[2] === undefined || (subresource !== 'exec' && subresource !== 'attach' && subresource !== 'portforward')) return refuseWithStatus(pathNotFoundStatus());
    const namespace = decodeURIComponent(podMatch[1]!);
    const name = decodeURIComponent(podMatch[2]);
    const pod = this.podsByKey.get(`${namespace}/${name}`);
    if (pod === undefined) return refuseWithStatus(objectNotFoundStatus('pods', name));
    if (subresource === 'portforward') return this.portForward(request, socket, head, record, pod, refuseWithStatus);
    const query = new URLSearchParams(record.rawQuery);
    const session = subresource === 'exec' ? sessionOf(parseExecRequest(pod, query), execSession) : sessionOf(parseAttachRequest(pod, query), attachSession);
    if (typeof session === 'string') return refuseWithStatus(failureStatus(400, 'BadRequest', session));
    if (pod.status.phase !== 'Running') {
      return refuseWithStatus(failureStatus(400, 'BadRequest', `pod ${name} is not running (phase ${pod.status.phase})`));
    }

    const count = (delta: number): void => {
      if (subresource === 'exec') this.execSessions += delta;
      else this.attachSessions += delta;
      this.changed();
    };
    const sessionEnded = (): void => count(-1);
    if (upgradeHeader.toLowerCase() === 'websocket') {
      if (record.method !== 'GET') return refuseWithStatus(failureStatus(400, 'BadRequest', 'WebSocket upgrades must use GET'));
      const protocol = chooseWebsocketProtocol(request.headers['sec-websocket-protocol']);
      if (protocol === undefined) return refuseWithStatus(failureStatus(400, 'BadRequest', 'none of the requested WebSocket subprotocols is supported'));
      record.upgrade = { upgradeHeader, protocol };
      record.status = 101;
      count(1);
      this.websocketExec.accept({ request, socket, head, session, protocol, onClose: sessionEnded });
      return;
    }
    if (upgradeHeader.toLowerCase() === 'spdy/3.1') {
      // kube-apiserver serves exec and attach (connect verbs) on GET and POST; client-go POSTs.
      if (record.method !== 'GET' && record.method !== 'POST') return refuseWithStatus(failureStatus(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
      const offered = (request.headers['x-stream-protocol-version'] ?? '')
        .toString()
        .split(',')
        .map((part) => part.trim());
      const rawOffered = request.rawHeaders.filter((_, index) => index % 2 === 1 && request.rawHeaders[index - 1]!.toLowerCase() === 'x-stream-protocol-version');
      if (!offered.includes('v4.channel.k8s.io') && !rawOffered.includes('v4.channel.k8s.io')) {
        return this.refuseUpgrade(socket, head, record, 403, { 'Content-Type': 'text/plain; charset=utf-8' }, `unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(rawOffered)}, server accepts ["v4.channel.k8s.io"]\n`);
      }
      record.upgrade = { upgradeHeader, protocol: 'v4.channel.k8s.io' };
      record.status = 101;
      count(1);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n');
      runSpdyExec({ socket, head, session, onClose: sessionEnded });
      return;
    }
    refuseWithStatus(failureStatus(400, 'BadRequest', `unsupported upgrade ${JSON.stringify(upgradeHeader)}`));
  }

  /**
   * `pods/portforward`: SPDY/3.1 with `X-Stream-Protocol-Version: portforward.k8s.io`, or a
   * WebSocket carrying the same SPDY session (`SPDY/3.1+portforward.k8s.io`); see
   * spdy-portforward.ts. Every running pod serves an echo on ECHO_PORT.
   */
  private portForward(request: IncomingMessage, socket: Duplex, head: Buffer, record: MutableRecord, pod: FakePod, refuseWithStatus: (status: KubeStatus) => void): void {
    if (pod.status.phase !== 'Running') {
      return refuseWithStatus(failureStatus(400, 'BadRequest', `pod ${pod.metadata.name} is not running (phase ${pod.status.phase})`));
    }
    const upgradeHeader = (request.headers.upgrade ?? '').toLowerCase();
    const sessionEnded = (): void => {
      this.portForwardSessions -= 1;
      this.changed();
    };
    if (upgradeHeader === 'websocket') {
      if (record.method !== 'GET') return refuseWithStatus(failureStatus(400, 'BadRequest', 'WebSocket upgrades must use GET'));
      const offered = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((part) => part.trim());
      if (!offered.includes(TUNNELED_PORT_FORWARD_PROTOCOL)) return refuseWithStatus(failureStatus(400, 'BadRequest', 'none of the requested WebSocket subprotocols is supported'));
      record.upgrade = { upgradeHeader: request.headers.upgrade ?? '', protocol: TUNNELED_PORT_FORWARD_PROTOCOL };
      record.status = 101;
      this.portForwardSessions += 1;
      this.changed();
      this.websocketPortForward.accept({ request, socket, head, podName: pod.metadata.name, onClose: sessionEnded });
      return;
    }
    if (upgradeHeader === 'spdy/3.1') {
      if (record.method !== 'POST') return refuseWithStatus(failureStatus(405, 'MethodNotAllowed', 'SPDY upgrades must use POST'));
      const offered = request.rawHeaders.filter((_, index) => index % 2 === 1 && request.rawHeaders[index - 1]!.toLowerCase() === 'x-stream-protocol-version');
      if (!offered.flatMap((value) => value.split(',').map((part) => part.trim())).includes('portforward.k8s.io')) {
        return this.refuseUpgrade(socket, head, record, 403, { 'Content-Type': 'text/plain; charset=utf-8' }, `unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(offered)}, server accepts ["portforward.k8s.io"]\n`);
      }
      record.upgrade = { upgradeHeader: request.headers.upgrade ?? '', protocol: 'portforward.k8s.io' };
      record.status = 101;
      this.portForwardSessions += 1;
      this.changed();
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n');
      runSpdyPortForward({ socket, head, podName: pod.metadata.name, onClose: sessionEnded });
      return;
    }
    refuseWithStatus(failureStatus(400, 'BadRequest', `unsupported upgrade ${JSON.stringify(request.headers.upgrade ?? '')}`));
  }

  /**
   * Answers an upgrade request with a normal response and keeps the connection usable for
   * further requests, as Go's net/http does (this is what made CVE-2018-1002105 possible).
   */
  private refuseUpgrade(socket: Duplex, head: Buffer, record: MutableRecord, status: number, headers: Readonly<Record<string, string>>, body: string): void {
    record.status = status;
    const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}`];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`, `Date: ${new Date().toUTCString()}`, 'Cache-Control: no-cache, private');
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
    if (head.length > 0) socket.unshift(head);
    this.server.emit('secureConnection', socket);
    this.changed();
  }
}

function isTrue(value: string | null): boolean {
  return value !== null && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value);
}

/** Equality-based label selectors and metadata.name/namespace field selectors; an error message otherwise. */
function parseSelectors(query: URLSearchParams): ((pod: FakePod) => boolean) | string {
  const tests: Array<(pod: FakePod) => boolean> = [];
  for (const requirement of splitSelector(query.get('labelSelector'))) {
    const match = /^([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$/.exec(requirement);
    if (match === null) return `the fake kube-apiserver supports only equality label selectors, not ${JSON.stringify(requirement)}`;
    const [, key, operator, value] = match as unknown as [string, string, string, string];
    tests.push((pod) => ((pod.metadata.labels?.[key] ?? undefined) === value) !== (operator === '!='));
  }
  for (const requirement of splitSelector(query.get('fieldSelector'))) {
    const match = /^(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*)$/.exec(requirement);
    if (match === null) return `field label not supported: ${requirement.split(/[=!]/)[0]}`;
    const [, field, operator, value] = match as unknown as [string, string, string, string];
    tests.push((pod) => ((field === 'metadata.name' ? pod.metadata.name : pod.metadata.namespace) === value) !== (operator === '!='));
  }
  return (pod) => tests.every((test) => test(pod));
}

function splitSelector(selector: string | null): string[] {
  if (selector === null || selector.trim() === '') return [];
  return selector.split(',').map((part) => part.trim());
}

function parseExecRequest(pod: FakePod, query: URLSearchParams): ExecRequest | string {
  const command = query.getAll('command');
  if (command.length === 0) return 'you must specify at least 1 command';
  const streams = parseStreams(query);
  if (typeof streams === 'string') return streams;
  const container = containerOf(pod, query);
  if (!container.ok) return container.error;
  return { namespace: pod.metadata.namespace, pod: pod.metadata.name, container: container.name, command, ...streams };
}

/**
 * `pods/attach` as kube-apiserver checks it (the container, against the pod's spec: 400) and
 * then the kubelet (at least one stream: 400).
 */
function parseAttachRequest(pod: FakePod, query: URLSearchParams): AttachRequest | string {
  const container = containerOf(pod, query);
  if (!container.ok) return container.error;
  const streams = parseStreams(query);
  if (typeof streams === 'string') return streams;
  return { namespace: pod.metadata.namespace, pod: pod.metadata.name, container: container.name, ...streams };
}

/** The session of a parsed request, or the message of a refused one. */
function sessionOf<T>(request: T | string, toSession: (request: T) => StreamSession): StreamSession | string {
  return typeof request === 'string' ? request : toSession(request);
}

type Streams = Pick<AttachRequest, 'stdin' | 'stdout' | 'stderr' | 'tty'>;

function parseStreams(query: URLSearchParams): Streams | string {
  const stdin = isTrue(query.get('stdin'));
  const stdout = isTrue(query.get('stdout'));
  const stderr = isTrue(query.get('stderr'));
  const tty = isTrue(query.get('tty'));
  if (!stdin && !stdout && !stderr) return 'you must specify at least 1 of stdin, stdout, stderr';
  return { stdin, stdout, stderr, tty };
}

/** The `container` parameter, or the pod's only container; kube-apiserver's messages otherwise. */
function containerOf(pod: FakePod, query: URLSearchParams): { ok: true; name: string } | { ok: false; error: string } {
  const containers = pod.spec.containers.map((container) => container.name);
  const container = query.get('container') ?? (containers.length === 1 ? containers[0]! : undefined);
  if (container === undefined) return { ok: false, error: `a container name must be specified for pod ${pod.metadata.name}, choose one of: [${containers.join(' ')}]` };
  if (!containers.includes(container)) return { ok: false, error: `container ${container} is not valid for pod ${pod.metadata.name}` };
  return { ok: true, name: container };
}
