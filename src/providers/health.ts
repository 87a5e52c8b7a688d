/**
 * Provider health, checked in the background (never per page view or API call): every
 * `intervalMs` each enabled provider's `checkHealth` runs once — LDAP/AD bind as the service
 * account and read the user search base, OIDC fetch discovery and the JWKS, GitHub reach
 * its API; a provider without a check (local) is always healthy. The last answer per
 * provider is kept with the time of the check and, when it failed, a message for admins.
 *
 * Design notes:
 * - Rounds never overlap, all providers of a round are checked at the same time, and each
 *   check has a deadline (`timeoutMs`): a hung directory marks its provider unhealthy
 *   instead of stalling the others or the next round.
 * - The message is safe to show: built from the error and its causes (`ECONNREFUSED …`,
 *   `HTTP 503`), run through the log censor (bearer credentials, URL passwords, tokens) and
 *   stripped of every value of the provider's own secret settings (`serviceAccountPassword`,
 *   `clientSecret`, … — by the same field names the logger censors), then cut short. A
 *   directory that echoes a password back in an error message still never shows it.
 * - A state change is logged once (warn when a provider turns unhealthy, info when it is
 *   back), not every round.
 * - Answers are kept in `records` (default in memory; the proxy's are the store's job
 *   reports, `sharedProviderHealthRecords`), so that every replica shows what the one
 *   process running the rounds (the background job lease holder) found. The monitor can be
 *   stopped and started again as the lease comes and goes.
 */
import type { ProviderConfig } from '../config/proxy.js';
import { isKubegateError } from '../errors.js';
import { REDACTED, censorSecrets, isSecretFieldName } from '../log.js';
import type { Logger } from '../log.js';
import type { JobReports } from '../store/job-reports.js';

export type ProviderHealthState = 'unknown' | 'healthy' | 'unhealthy';

export interface ProviderHealth {
  /** `unknown` until the first check has answered. */
  readonly state: ProviderHealthState;
  /** When the last check finished (ISO 8601), or null before the first. */
  readonly checkedAt: string | null;
  /** Why the last check failed (safe to show), or null. */
  readonly message: string | null;
}

/** A provider as the monitor sees it (PasswordProvider and WebLoginProvider both fit). */
export interface HealthCheckedProvider {
  readonly name: string;
  checkHealth?(): Promise<void>;
}

/** Where the monitor keeps its answers. */
export interface ProviderHealthRecords {
  get(name: string): ProviderHealth | undefined;
  set(name: string, health: ProviderHealth): void;
}

export interface ProviderHealthMonitorOptions {
  readonly providers: readonly HealthCheckedProvider[];
  /** The providers' configuration: the values of their secret settings never reach a message. */
  readonly configs: readonly ProviderConfig[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly now?: () => Date;
  /** Default: in this process's memory. */
  readonly records?: ProviderHealthRecords;
}

export interface ProviderHealthMonitor {
  /** Starts the rounds (the first at once). Idempotent; may follow `stop()`. */
  start(): void;
  /** Stops the rounds and waits for a running one. */
  stop(): Promise<void>;
  /** One round now (or the running one). */
  checkNow(): Promise<void>;
  /** The last answer for an enabled provider, undefined for any other name. */
  get(name: string): ProviderHealth | undefined;
}

const MAX_MESSAGE_LENGTH = 300;
const UNKNOWN: ProviderHealth = Object.freeze({ state: 'unknown', checkedAt: null, message: null });

export function createProviderHealthMonitor(options: ProviderHealthMonitorOptions): ProviderHealthMonitor {
  const { providers, logger, intervalMs, timeoutMs } = options;
  if (!(intervalMs > 0) || !(timeoutMs > 0)) throw new TypeError('intervalMs and timeoutMs must be > 0');
  const now = options.now ?? (() => new Date());
  const names = new Set(providers.map((provider) => provider.name));
  const health: ProviderHealthRecords = options.records ?? new Map<string, ProviderHealth>();
  const secrets = new Map(options.configs.map((config) => [config.name, secretValuesOf(config.settings)]));
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let started = false;

  async function checkOne(provider: HealthCheckedProvider): Promise<void> {
    let message: string | null = null;
    try {
      if (provider.checkHealth !== undefined) await withDeadline(provider.checkHealth(), timeoutMs);
    } catch (error) {
      message = safeMessage(error, secrets.get(provider.name) ?? []);
    }
    const previous = health.get(provider.name) ?? UNKNOWN;
    const next: ProviderHealth = Object.freeze({ state: message === null ? 'healthy' : 'unhealthy', checkedAt: now().toISOString(), message });
    health.set(provider.name, next);
    if (next.state !== previous.state) {
      if (next.state === 'unhealthy') logger.warn({ provider: provider.name, reason: message }, 'identity provider is unhealthy');
      else if (previous.state === 'unhealthy') logger.info({ provider: provider.name }, 'identity provider is healthy again');
    }
  }

  function checkNow(): Promise<void> {
    running ??= Promise.all(providers.map(checkOne))
      .then(() => undefined)
      .finally(() => {
        running = undefined;
      });
    return running;
  }

  /** Rounds of an earlier start() (before a stop) must not schedule more after a new start(). */
  let generation = 0;

  function loop(current: number): void {
    void checkNow().finally(() => {
      if (!started || current !== generation) return;
      timer = setTimeout(() => loop(current), intervalMs);
      timer.unref();
    });
  }

  return {
    start() {
      if (started) return;
      started = true;
      loop(++generation);
    },
    async stop() {
      started = false;
      clearTimeout(timer);
      await running;
    },
    checkNow,
    // Only enabled providers have a health; unknown until the first check answered.
    get: (name) => (names.has(name) ? (health.get(name) ?? UNKNOWN) : undefined),
  };
}

/**
 * The monitor's records as the store's job reports (`provider-health`): written by the
 * process that checks, read by every process. A report that does not decode counts as none.
 */
export function sharedProviderHealthRecords(reports: JobReports): ProviderHealthRecords {
  return {
    get(name) {
      const report = reports.get('provider-health', name);
      if (report === undefined) return undefined;
      const { state, checkedAt, message } = report;
      if ((state !== 'healthy' && state !== 'unhealthy') || typeof checkedAt !== 'string' || (message !== null && typeof message !== 'string')) return undefined;
      return Object.freeze({ state, checkedAt, message });
    },
    set(name, health) {
      void reports.put('provider-health', name, { state: health.state, checkedAt: health.checkedAt, message: health.message });
    },
  };
}

/** As the `kubegate_provider_up` gauge reads a health: true, false, or undefined before the first check. */
export function upOf(health: ProviderHealth | undefined): boolean | undefined {
  return health === undefined || health.state === 'unknown' ? undefined : health.state === 'healthy';
}

function withDeadline(check: Promise<void>, timeoutMs: number): Promise<void> {
  let deadline: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    deadline = setTimeout(() => reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
  });
  return Promise.race([check, timedOut]).finally(() => clearTimeout(deadline));
}

/** The values of every secret-named setting (at any depth), longest first. */
function secretValuesOf(settings: unknown): string[] {
  const found: string[] = [];
  const visit = (value: unknown, key: string | undefined): void => {
    if (typeof value === 'string') {
      if (key !== undefined && isSecretFieldName(key) && value.length > 0) found.push(value);
    } else if (Array.isArray(value)) {
      for (const item of value) visit(item, key);
    } else if (typeof value === 'object' && value !== null) {
      for (const [name, item] of Object.entries(value)) visit(item, name);
    }
  };
  visit(settings, undefined);
  return found.sort((a, b) => b.length - a.length);
}

/** The error and its causes in one line, without secrets, at most MAX_MESSAGE_LENGTH characters. */
export function safeMessage(error: unknown, secretValues: readonly string[]): string {
  const parts: string[] = [];
  const visit = (value: unknown, depth: number): void => {
    if (depth > 4 || parts.length >= 6) return;
    if (value instanceof AggregateError) {
      for (const inner of value.errors) visit(inner, depth + 1);
      return;
    }
    if (value instanceof Error) {
      const code = (value as NodeJS.ErrnoException).code;
      const text = isKubegateError(value) || code === undefined || value.message.includes(code) ? value.message : `${code}: ${value.message}`;
      if (text !== '' && !parts.includes(text)) parts.push(text);
      visit(value.cause, depth + 1);
    } else if (typeof value === 'string' && value !== '' && !parts.includes(value)) {
      parts.push(value);
    }
  };
  visit(error, 0);
  let text = parts.join(': ').replace(/[\u0000-\u001f\u007f]+/g, ' ');
  for (const secret of secretValues) text = text.split(secret).join(REDACTED);
  text = censorSecrets(text);
  if (text === '') text = 'the check failed';
  return text.length > MAX_MESSAGE_LENGTH ? `${text.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : text;
}
