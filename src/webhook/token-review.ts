/**
 * TokenReview (`authentication.k8s.io/v1` and `v1beta1`) as the webhook reads and answers it.
 *
 * The request is untrusted input: it is checked field by field and every problem is a
 * KubegateError BAD_REQUEST whose message names the field (never its value: it may be a
 * token). The answer always carries the request's own apiVersion — kube-apiserver fails a
 * reply of another version with "unknown conversion".
 *
 * Three answers, by the authenticator's outcome (see app.ts for why):
 * - authenticated → `authenticated: true` with username, groups, and uid/extra when set;
 * - unauthenticated → `authenticated: false`, no error: kube-apiserver caches it for
 *   `--authentication-token-webhook-cache-ttl`;
 * - error (undecided) → `authenticated: false` WITH `status.error`: kube-apiserver's webhook
 *   authenticator turns a non-empty error into a Go error, and its cache never keeps errors,
 *   so the next request asks again — without the retries and delay a 5xx would cause.
 *
 * Audiences (`spec.audiences`, which kube-apiserver fills with its `--api-audiences` on
 * every review, and a TokenReview API caller with the audience it is checking for): the
 * audiences kubegate tokens are valid for are the webhook's `audiences` setting.
 * - none configured: the reply names no audience, which tells kube-apiserver "valid for
 *   your default audience" — it then intersects its own audiences with the requested ones,
 *   so a review asking for an unrelated audience (`vault`) is refused by the API server;
 * - configured: `status.audiences` is the intersection with the requested ones; an empty
 *   intersection is `authenticated: false` (cached: the answer never changes for that
 *   token and audience set), code TOKEN_AUDIENCE_MISMATCH in the webhook's log;
 * - no audiences requested: nothing to check, none named.
 */
import { kubernetesNameOf } from '../auth/principal.js';
import { KubegateError } from '../errors.js';
import { unauthenticated } from '../auth/authenticator.js';
import type { AuthResult } from '../auth/authenticator.js';

const TOKEN_REVIEW_VERSIONS = ['authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1'] as const;
export type TokenReviewVersion = (typeof TOKEN_REVIEW_VERSIONS)[number];

export interface TokenReviewRequest {
  readonly apiVersion: TokenReviewVersion;
  readonly token: string;
  /** `spec.audiences`, empty when the request is not audience-bound. */
  readonly audiences: readonly string[];
}

export interface TokenReviewUser {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

export interface TokenReviewReply {
  readonly apiVersion: TokenReviewVersion;
  readonly kind: 'TokenReview';
  readonly metadata: { readonly creationTimestamp: null };
  readonly spec: Record<string, never>;
  readonly status: {
    readonly authenticated: boolean;
    readonly user?: TokenReviewUser;
    readonly audiences?: readonly string[];
    readonly error?: string;
  };
}

const MAX_AUDIENCES = 32;

function bad(message: string, field: string): KubegateError {
  return new KubegateError('BAD_REQUEST', message, { field });
}

/** Parses a TokenReview request body (already JSON-decoded). */
export function parseTokenReview(body: unknown): TokenReviewRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('the body must be a TokenReview JSON object', 'body');
  const review = body as { apiVersion?: unknown; kind?: unknown; spec?: unknown };
  if (review.kind !== 'TokenReview') throw bad('kind must be "TokenReview"', 'kind');
  if (typeof review.apiVersion !== 'string' || !(TOKEN_REVIEW_VERSIONS as readonly string[]).includes(review.apiVersion)) {
    throw bad('apiVersion must be authentication.k8s.io/v1 or authentication.k8s.io/v1beta1', 'apiVersion');
  }
  const spec = review.spec;
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw bad('spec must be an object', 'spec');
  const { token, audiences } = spec as { token?: unknown; audiences?: unknown };
  if (typeof token !== 'string' || token.length === 0) throw bad('spec.token is missing or empty', 'spec.token');
  let audienceList: string[] = [];
  if (audiences !== undefined && audiences !== null) {
    if (!Array.isArray(audiences) || audiences.length > MAX_AUDIENCES || !audiences.every((audience) => typeof audience === 'string')) {
      throw bad(`spec.audiences must be a list of at most ${MAX_AUDIENCES} strings`, 'spec.audiences');
    }
    audienceList = audiences as string[];
  }
  return { apiVersion: review.apiVersion as TokenReviewVersion, token, audiences: audienceList };
}

/**
 * The audiences a valid token is granted for this review: [] when none are named (nothing
 * requested, or no audiences configured: the API server's default applies), the
 * intersection of `requested` and `valid` otherwise, or null when that is empty (the token
 * is not for this audience).
 */
export function grantedAudiences(requested: readonly string[], valid: readonly string[]): readonly string[] | null {
  if (requested.length === 0 || valid.length === 0) return [];
  const granted = requested.filter((audience, index) => valid.includes(audience) && requested.indexOf(audience) === index);
  return granted.length === 0 ? null : granted;
}

const WRONG_AUDIENCE: AuthResult = Object.freeze(unauthenticated('TOKEN_AUDIENCE_MISMATCH'));

/** `result`, unless it authenticates a token that is not valid for any requested audience. */
export function checkAudiences(request: TokenReviewRequest, result: AuthResult, valid: readonly string[]): AuthResult {
  if (result.outcome !== 'authenticated' || grantedAudiences(request.audiences, valid) !== null) return result;
  return WRONG_AUDIENCE;
}

/**
 * The reply for an authenticator outcome (already passed through checkAudiences), in the
 * request's version; `valid` are the audiences tokens are valid for. As an object: the
 * reply's definition, which tokenReviewReplyJson writes without building it (the tests hold
 * the two byte for byte equal).
 */
export function tokenReviewReply(request: TokenReviewRequest, result: AuthResult, valid: readonly string[] = []): TokenReviewReply {
  const base = { apiVersion: request.apiVersion, kind: 'TokenReview' as const, metadata: { creationTimestamp: null }, spec: {} };
  if (result.outcome === 'authenticated') {
    const audiences = grantedAudiences(request.audiences, valid);
    if (audiences === null) return { ...base, status: { authenticated: false } };
    const { user } = result;
    const extra = Object.keys(user.extra).length === 0 ? undefined : user.extra;
    return {
      ...base,
      status: {
        authenticated: true,
        user: {
          username: kubernetesNameOf(user),
          ...(user.uid === '' ? {} : { uid: user.uid }),
          groups: user.groups,
          ...(extra === undefined ? {} : { extra }),
        },
        ...(audiences.length === 0 ? {} : { audiences }),
      },
    };
  }
  if (result.outcome === 'unauthenticated') return { ...base, status: { authenticated: false } };
  return { ...base, status: { authenticated: false, error: `${result.error.code}: ${result.error.message}` } };
}

/** Each version's reply up to the status object, written once. */
const REPLY_HEADS: Readonly<Record<TokenReviewVersion, string>> = {
  'authentication.k8s.io/v1': '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","metadata":{"creationTimestamp":null},"spec":{},"status":',
  'authentication.k8s.io/v1beta1': '{"apiVersion":"authentication.k8s.io/v1beta1","kind":"TokenReview","metadata":{"creationTimestamp":null},"spec":{},"status":',
};
const NOT_AUTHENTICATED = '{"authenticated":false}}';

/**
 * `JSON.stringify(tokenReviewReply(request, result, valid))`, byte for byte, written from a
 * template: the fixed parts are constants, and only the values that vary (user name, uid,
 * groups, extra, audiences, error message) go through JSON.stringify, each on its own —
 * no reply object is built. Field order and omissions are tokenReviewReply's.
 */
export function tokenReviewReplyJson(request: TokenReviewRequest, result: AuthResult, valid: readonly string[] = []): string {
  const head = REPLY_HEADS[request.apiVersion];
  if (result.outcome === 'unauthenticated') return head + NOT_AUTHENTICATED;
  if (result.outcome === 'error') return `${head}{"authenticated":false,"error":${JSON.stringify(`${result.error.code}: ${result.error.message}`)}}}`;
  const audiences = grantedAudiences(request.audiences, valid);
  if (audiences === null) return head + NOT_AUTHENTICATED;
  const { user } = result;
  let json = `${head}{"authenticated":true,"user":{"username":${JSON.stringify(kubernetesNameOf(user))}`;
  if (user.uid !== '') json += `,"uid":${JSON.stringify(user.uid)}`;
  json += `,"groups":${JSON.stringify(user.groups)}`;
  if (Object.keys(user.extra).length !== 0) json += `,"extra":${JSON.stringify(user.extra)}`;
  json += '}';
  if (audiences.length !== 0) json += `,"audiences":${JSON.stringify(audiences)}`;
  return `${json}}}`;
}
