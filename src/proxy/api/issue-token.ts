/**
 * Issuing kubegate tokens from the REST API (login, API tokens, kubeconfigs): a fresh
 * `t-…:secret`, of which only the `$3` hash is stored. The secret exists in the answer to
 * the one request that made it and nowhere else.
 */
import { KubegateError, isKubegateError } from '../../errors.js';
import type { Token, TokenKind } from '../../store/store.js';
import { expiresAtFrom } from '../../tokens/expiry.js';
import { generateToken } from '../../tokens/generate.js';
import { hashSecret } from '../../tokens/hash.js';
import type { ProxyApiContext } from './context.js';

export interface IssueTokenOptions {
  readonly userId: string;
  /** The provider the user authenticated with (decides the token's groups). */
  readonly provider: string;
  readonly kind: TokenKind;
  readonly clusterId?: string | null;
  readonly description?: string;
  readonly ttlSeconds: number;
  /** A longer `ttlSeconds` is TTL_TOO_LONG (field `ttl`). */
  readonly maxTtlSeconds: number;
}

export interface IssuedToken {
  /** `name:secret`, to hand to the caller once. */
  readonly token: string;
  readonly stored: Token;
}

/**
 * When a token of `ttlSeconds` made now expires. Throws TTL_TOO_LONG (field `ttl`) above
 * `maxTtlSeconds`; routes call it before doing work, so a bad lifetime costs nothing.
 */
export function expiryFor(ctx: Pick<ProxyApiContext, 'now'>, ttlSeconds: number, maxTtlSeconds: number): Date {
  try {
    return expiresAtFrom(ctx.now(), ttlSeconds, maxTtlSeconds);
  } catch (error) {
    if (isKubegateError(error, 'TTL_TOO_LONG') || isKubegateError(error, 'DURATION_INVALID')) {
      throw new KubegateError(error.code, `ttl: ${error.message}`, { field: 'ttl' });
    }
    throw error;
  }
}

export async function issueToken(ctx: Pick<ProxyApiContext, 'store' | 'now'>, options: IssueTokenOptions): Promise<IssuedToken> {
  const expiresAt = expiryFor(ctx, options.ttlSeconds, options.maxTtlSeconds);
  const generated = generateToken();
  const stored = await ctx.store.createToken({
    name: generated.name,
    tokenHash: hashSecret(generated.secret),
    userId: options.userId,
    kind: options.kind,
    provider: options.provider,
    clusterId: options.clusterId ?? null,
    description: options.description ?? '',
    expiresAt,
  });
  return { token: generated.token, stored };
}

/** What the API shows of a token: never its hash, never its secret. */
export function tokenView(token: Token): Record<string, unknown> {
  return {
    name: token.name,
    kind: token.kind,
    description: token.description,
    provider: token.provider,
    cluster: token.clusterId,
    expiresAt: token.expiresAt?.toISOString() ?? null,
    lastUsedAt: token.lastUsedAt?.toISOString() ?? null,
    createdAt: token.createdAt.toISOString(),
  };
}
