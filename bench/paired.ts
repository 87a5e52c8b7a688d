/**
 * Paired CPU comparison: `npm run bench:paired -- [--kubegate NAME=DIR]… [--node-args NAME='FLAGS']…
 * [--peers node-http,undici,go-reverseproxy,native-core] [--webhook] [--rounds 8] [--seconds 3] [--connections 16] [--cpu-prof DIR]
 * [--large BYTES] [--agent [--direct NAME]…]`.
 *
 * On a machine whose speed drifts from one minute to the next (and that other work shares),
 * requests per second compare nothing; the CPU time the proxy process spends per request
 * does, when every variant is measured in the same minutes. So: one upstream, every variant
 * started side by side (kubegate from each source tree given, by default this one; the bare
 * peers), then `rounds` rounds in which each variant in turn (the order rotated every round)
 * serves a small GET under wrk for `seconds`; per round the proxy's CPU time (user + system,
 * from /proc, of its whole process tree: native-core's is the Go core and its Node decider
 * together) is divided by the requests served. Prints the median, lowest and highest
 * µs/request per variant and each median relative to the first variant.
 *
 * `--cpu-prof DIR`: the kubegate trees and the bare Node peers run under `node --cpu-prof`
 * (DIR/<name>/), so their profiles cover the same minutes; at the end the command that
 * attributes each one's time per request, function by function (profile-summary.ts
 * `--inclusive --last --requests`), is printed with the requests that process served.
 * `--node-args NAME='--flag …'` starts the kubegate variant NAME with those options for node
 * itself (V8 flags: the same tree twice, `--kubegate a=. --kubegate b=. --node-args
 * b=--single-threaded-gc`, compares a flag). Every kubegate proxy variant also reports its own
 * event-loop stalls per round (loop-stalls.ts): the median and highest of its longest
 * event-loop delay per round, and its garbage-collector pauses of 100 ms or more in all.
 * `--large BYTES` relays a pod list of that size instead (the large-list scenario's answer;
 * `--connections` defaults to 4 there, like the scenario) and divides the CPU time by the
 * megabytes relayed: CPU ms per MB, plus each variant's median GB/s in the same rounds and
 * its peak RSS over all rounds (sampled every 50 ms, as the large-list scenario does).
 * `--webhook` compares `kubegate webhook` instead: each tree's webhook (its compiled dist/)
 * reads its objects from one bench API server (bench/webhook-apiserver.ts, its own process)
 * and answers the webhook scenario's warm-cache `$3` TokenReview; `--peers reference` adds
 * the bare node:http answerer (bench/review-reference.ts). CPU µs per review.
 * `--webhook --distinct N`: every review a `$3` token that variant has not reviewed before
 * (the API server holds N; each variant walks them from where its last round stopped, so a
 * token comes back only after N − 1 reviews — reported when it happens: reviews of a token
 * seen within the cache TTL are cached, and within a minute are not stamped again).
 * `--agent`: each kubegate tree's cluster is agent-mode, reached through the tunnel of that
 * tree's own `kubegate agent` process (the `kubegate-agent` row's setup); the agent's CPU
 * time per request (or per MB) is measured in the same rounds and printed on its own line
 * (`<name> agent`) beside the proxy's, with their sum; under `--cpu-prof` the agent is
 * profiled too (DIR/<name>-agent/). Peers still dial the upstream directly, and so do the
 * kubegate variants named with `--direct NAME` (the same tree twice, `--kubegate direct=.
 * --kubegate tunnel=. --agent --direct direct`, shows what the tunnel costs the proxy).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuSeconds, sampleRss, stopAllChildren } from './processes.js';
import { CLUSTER_PATH, createTls, kubegateEntry, startBareForwarder, startGoReverseProxy, startKubegate, startNativeCore, startUpstream } from './targets.js';
import type { Target } from './targets.js';
import { watchLoopStalls } from './loop-stalls.js';
import { CACHED_REVIEW_BODY, REVIEW_HEADERS, distinctReviewScript, startKubegateWebhook, startReviewReference, startWebhookApiServer } from './webhook.js';
import type { Child } from './processes.js';
import { runWrk } from './wrk.js';

const REPO = new URL('..', import.meta.url).pathname;
const PEERS = ['node-http', 'http-proxy-3', 'undici', 'go-reverseproxy', 'native-core', 'native-core-cached'] as const;
type Peer = (typeof PEERS)[number];
const WEBHOOK_PEERS = ['reference'] as const;

/** What one round sends to a variant. */
interface Measured {
  readonly name: string;
  readonly kind: Target['kind'];
  readonly pid: number;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** A kubegate proxy's /metrics, whose event-loop and GC figures loop-stalls.ts reads. */
  readonly metricsUrl?: string | undefined;
  /** --agent: the variant's `kubegate agent` process, measured beside the proxy. */
  readonly agentPid?: number | undefined;
}

function webhookVariant(name: string, kind: Target['kind'], started: { child: Child; url: string }): Measured {
  return { name, kind, pid: started.child.pid, url: `${started.url}/v1/authenticate`, headers: REVIEW_HEADERS, body: CACHED_REVIEW_BODY };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kubegate: { type: 'string', multiple: true },
      'node-args': { type: 'string', multiple: true },
      peers: { type: 'string', default: '' },
      rounds: { type: 'string', default: '8' },
      seconds: { type: 'string', default: '3' },
      connections: { type: 'string' },
      'cpu-prof': { type: 'string' },
      large: { type: 'string' },
      webhook: { type: 'boolean', default: false },
      distinct: { type: 'string' },
      agent: { type: 'boolean', default: false },
      direct: { type: 'string', multiple: true },
    },
  });
  const webhook = values.webhook === true;
  const profileRoot = values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']);
  const profileDir = (name: string): string | undefined => {
    if (profileRoot === undefined) return undefined;
    const dir = join(profileRoot, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const large = values.large === undefined ? undefined : Number(values.large);
  const connections = Number(values.connections ?? (large === undefined ? 16 : 4));
  if (large !== undefined && (!Number.isSafeInteger(large) || large < 1)) throw new TypeError('--large must be a whole number of bytes ≥ 1');
  for (const [name, value] of [['rounds', rounds], ['seconds', seconds], ['connections', connections]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new TypeError(`--${name} must be a whole number ≥ 1`);
  }
  if (webhook && large !== undefined) throw new TypeError('--webhook and --large measure different things: give one');
  const viaAgent = values.agent === true;
  if (webhook && viaAgent) throw new TypeError('--agent applies to proxy variants, not --webhook');
  const direct = new Set(values.direct ?? []);
  if (direct.size > 0 && !viaAgent) throw new TypeError('--direct NAME applies with --agent');
  const distinct = values.distinct === undefined ? undefined : Number(values.distinct);
  if (distinct !== undefined && (!webhook || !Number.isSafeInteger(distinct) || distinct < 2)) throw new TypeError('--distinct N (tokens, ≥ 2) applies to --webhook');
  const peers = (values.peers ?? '').split(',').filter((name) => name !== '') as Peer[];
  const known: readonly string[] = webhook ? WEBHOOK_PEERS : PEERS;
  for (const peer of peers) if (!known.includes(peer)) throw new TypeError(`--peers: unknown ${peer} (${known.join(', ')})`);
  const nodeArgs = new Map<string, string[]>();
  for (const entry of values['node-args'] ?? []) {
    const at = entry.indexOf('=');
    if (at <= 0) throw new TypeError("--node-args NAME='FLAGS'");
    nodeArgs.set(entry.slice(0, at), entry.slice(at + 1).split(' ').filter((arg) => arg !== ''));
  }
  const trees = (values.kubegate ?? ['kubegate=.']).map((entry) => {
    const at = entry.indexOf('=');
    if (at <= 0) throw new TypeError('--kubegate NAME=DIR');
    const name = entry.slice(0, at);
    return { name, repo: resolve(REPO, entry.slice(at + 1)), nodeArgs: nodeArgs.get(name), viaAgent: viaAgent && !direct.has(name) };
  });
  for (const name of nodeArgs.keys()) if (!trees.some((tree) => tree.name === name)) throw new TypeError(`--node-args: no --kubegate variant named ${name}`);
  for (const name of direct) if (!trees.some((tree) => tree.name === name)) throw new TypeError(`--direct: no --kubegate variant named ${name}`);
  if (webhook && nodeArgs.size > 0) throw new TypeError('--node-args applies to proxy variants, not --webhook');

  const workDir = mkdtempSync(join(tmpdir(), 'kubegate-paired-'));
  try {
    // Every tree is compiled before any process starts: the build blocks this process, and a
    // child started before it would miss its ready deadline on a loaded machine.
    for (const tree of trees) kubegateEntry(tree.repo);
    const targets = webhook ? await startWebhookVariants(trees, peers.length > 0, distinct ?? 1, workDir, profileDir) : await startProxyVariants(trees, peers, large, workDir, profileDir);
    const timeout = large === undefined ? {} : { timeoutSeconds: 30 };
    /** --distinct: the reviews each variant asked for so far (its next round starts after them). */
    const reviewed = new Map<string, number>(targets.map((target) => [target.name, 0]));
    const request = (target: Measured) => ({
      url: target.url,
      connections,
      headers: target.headers,
      workDir,
      ...timeout,
      ...(target.body === undefined ? {} : { method: 'POST', body: target.body }),
      ...(distinct === undefined ? {} : { requestScript: distinctReviewScript(reviewed.get(target.name) ?? 0, distinct) }),
    });
    /** Runs one round of wrk against `target`; --distinct: counts the reviews it may have asked for (those in flight at the end too). */
    const measure = async (target: Measured, durationSeconds: number) => {
      const result = await runWrk({ ...request(target), durationSeconds });
      reviewed.set(target.name, (reviewed.get(target.name) ?? 0) + result.requests + connections);
      return result;
    };
    for (const target of targets) await measure(target, 1);
    /** Small GET: CPU µs per request; large list: CPU ms per MB relayed. */
    const samples = new Map<string, number[]>(targets.map((target) => [target.name, []]));
    /** --agent: the same per request/MB for each variant's agent process, and for both together. */
    const agentSamples = new Map<string, number[]>();
    const bothSamples = new Map<string, number[]>();
    const served = new Map<string, number>(targets.map((target) => [target.name, 0]));
    const measuringSince = Date.now();
    const rates = new Map<string, number[]>(targets.map((target) => [target.name, []]));
    /** kubegate proxy variants: each round's longest event-loop delay, and the long GC pauses in all. */
    const stalls = new Map<string, { loopDelayMaxMs: number[]; gcPausesOver100Ms: number }>();
    const peakRss = new Map<string, number>(targets.map((target) => [target.name, 0]));
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < targets.length; i++) {
        const target = targets[(i + round) % targets.length] as Measured;
        const pid = target.pid;
        const stallsOfRound = target.metricsUrl === undefined ? undefined : await watchLoopStalls(target.metricsUrl);
        const before = cpuSeconds(pid);
        const agentBefore = target.agentPid === undefined ? 0 : cpuSeconds(target.agentPid);
        const memory = sampleRss(pid);
        const result = await measure(target, seconds);
        const { peakBytes } = memory.stop();
        if (result.errors > 0) throw new Error(`${target.name}: ${result.errors} errors`);
        const cpu = cpuSeconds(pid) - before;
        const agentCpu = target.agentPid === undefined ? undefined : cpuSeconds(target.agentPid) - agentBefore;
        peakRss.set(target.name, Math.max(peakRss.get(target.name) ?? 0, peakBytes));
        const roundStalls = await stallsOfRound?.();
        if (roundStalls !== undefined) {
          const seen = stalls.get(target.name) ?? { loopDelayMaxMs: [], gcPausesOver100Ms: 0 };
          seen.loopDelayMaxMs.push(roundStalls.loopDelayMaxMs);
          seen.gcPausesOver100Ms += roundStalls.gcPausesOver100Ms;
          stalls.set(target.name, seen);
        }
        served.set(target.name, (served.get(target.name) ?? 0) + result.requests);
        const megabytes = (result.bytesPerSecond * result.durationSeconds) / 1e6;
        const perUnit = (seconds: number): number => (large === undefined ? (seconds * 1e6) / result.requests : (seconds * 1e3) / megabytes);
        samples.get(target.name)?.push(perUnit(cpu));
        if (agentCpu !== undefined) {
          agentSamples.set(target.name, [...(agentSamples.get(target.name) ?? []), perUnit(agentCpu)]);
          bothSamples.set(target.name, [...(bothSamples.get(target.name) ?? []), perUnit(cpu + agentCpu)]);
        }
        rates.get(target.name)?.push(large === undefined ? result.requestsPerSecond : result.bytesPerSecond / 1e9);
      }
      process.stderr.write(`round ${round + 1}/${rounds}: ${targets.map((t) => `${t.name} ${(samples.get(t.name)?.at(-1) ?? 0).toFixed(0)}`).join(', ')}\n`);
    }
    const base = median(samples.get(targets[0]?.name ?? '') ?? [0]);
    if (distinct !== undefined) {
      for (const [name, count] of reviewed) if (count >= distinct) process.stdout.write(`${name}: ${count} reviews of ${distinct - 1} distinct tokens: some were reviewed twice\n`);
    }
    const what = webhook ? (distinct === undefined ? 'CPU µs per cached TokenReview' : 'CPU µs per TokenReview of a distinct $3 token') : large === undefined ? 'CPU µs per small GET' : `CPU ms per MB of a ${(large / 1024 / 1024).toFixed(0)} MiB list`;
    const rate = webhook ? 'reviews/s' : large === undefined ? 'req/s' : 'GB/s';
    const digits = large === undefined ? 0 : 2;
    process.stdout.write(`${what} (c=${connections}, ${rounds} rounds of ${seconds} s; median [lowest–highest], × ${targets[0]?.name}; median ${rate}${large === undefined ? '' : '; peak RSS'})\n`);
    for (const target of targets) {
      const list = samples.get(target.name) ?? [];
      const agentList = agentSamples.get(target.name);
      const bothList = bothSamples.get(target.name) ?? [];
      const m = median(list);
      const r = median(rates.get(target.name) ?? [0]);
      const seen = stalls.get(target.name);
      const stallText =
        seen === undefined
          ? ''
          : `  loop stall ${median(seen.loopDelayMaxMs).toFixed(0)} ms [highest ${Math.max(...seen.loopDelayMaxMs).toFixed(0)}], ${seen.gcPausesOver100Ms} GC pauses ≥100 ms`;
      process.stdout.write(
        `${target.name.padEnd(24)} ${m.toFixed(digits).padStart(7)}  [${Math.min(...list).toFixed(digits)}–${Math.max(...list).toFixed(digits)}]  ${(m / base).toFixed(2)}×  ${r.toFixed(large === undefined ? 0 : 2)} ${rate}` +
          `${large === undefined ? '' : `  ${((peakRss.get(target.name) ?? 0) / 1048576).toFixed(0)} MB`}${stallText}\n`,
      );
      if (agentList !== undefined) {
        const spread = (values: readonly number[]): string => `${median(values).toFixed(digits).padStart(7)}  [${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}]`;
        process.stdout.write(`${`${target.name} agent`.padEnd(24)} ${spread(agentList)}\n`);
        process.stdout.write(`${`${target.name} proxy+agent`.padEnd(24)} ${spread(bothList)}\n`);
      }
    }
    if (profileRoot !== undefined) {
      // Profiles are written when the processes stop; the window reaches back to the first round.
      await stopAllChildren();
      const windowSeconds = Math.ceil((Date.now() - measuringSince) / 1000);
      process.stdout.write(`profiles in ${profileRoot}; per request, function by function:\n`);
      for (const target of targets) {
        if (target.kind === 'go' || target.kind === 'native-core') continue;
        for (const dir of target.agentPid === undefined ? [target.name] : [target.name, `${target.name}-agent`]) {
          process.stdout.write(`  node --import tsx bench/profile-summary.ts ${join(profileRoot, dir)} 40 --inclusive --last ${windowSeconds} --requests ${served.get(target.name) ?? 0}\n`);
        }
      }
    }
  } finally {
    await stopAllChildren();
    rmSync(workDir, { recursive: true, force: true });
  }
}

async function startProxyVariants(
  trees: readonly { name: string; repo: string; nodeArgs: string[] | undefined; viaAgent: boolean }[],
  peers: readonly Peer[],
  large: number | undefined,
  workDir: string,
  profileDir: (name: string) => string | undefined,
): Promise<Measured[]> {
  const tls = await createTls(workDir);
  const upstream = await startUpstream(tls);
  const targets: Target[] = await Promise.all([
    ...trees.map((tree) =>
      startKubegate(upstream, tls, workDir, {
        workers: 1,
        repo: tree.repo,
        name: tree.name,
        cpuProfileDir: profileDir(tree.name),
        nodeArgs: tree.nodeArgs,
        ...(tree.viaAgent ? { via: 'agent' as const, agentCpuProfileDir: profileDir(`${tree.name}-agent`) } : {}),
      }),
    ),
    ...peers.map((peer) =>
      peer === 'go-reverseproxy'
        ? startGoReverseProxy(upstream, tls, workDir)
        : peer === 'native-core' || peer === 'native-core-cached'
          ? startNativeCore(upstream, tls, workDir, { decisionCache: peer === 'native-core-cached' })
          : startBareForwarder(peer, upstream, tls, profileDir(peer)),
    ),
  ]);
  const path = large === undefined ? '/api/v1/namespaces/default/pods' : `/api/v1/pods?size=${large}`;
  return targets.map((target) => ({ name: target.name, kind: target.kind, pid: target.pid as number, url: `${target.origin}${CLUSTER_PATH}${path}`, headers: target.headers, metricsUrl: target.kubegate?.metricsUrl, agentPid: target.kubegate?.agentPid }));
}

async function startWebhookVariants(
  trees: readonly { name: string; repo: string }[],
  withReference: boolean,
  sha3Tokens: number,
  workDir: string,
  profileDir: (name: string) => string | undefined,
): Promise<Measured[]> {
  const apiServer = await startWebhookApiServer(sha3Tokens, 0, workDir);
  const variants = await Promise.all(
    trees.map(async (tree) => webhookVariant(tree.name, 'kubegate', await startKubegateWebhook(apiServer.kubeconfig, { repo: tree.repo, name: tree.name, cpuProfileDir: profileDir(tree.name) }))),
  );
  if (withReference) variants.push(webhookVariant('reference', 'bare', await startReviewReference(profileDir('reference'))));
  return variants;
}

main().catch(async (error: unknown) => {
  process.stderr.write(`paired run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await stopAllChildren();
  process.exitCode = 1;
});
