/**
 * The settings of a `github` provider (github.com, or GitHub Enterprise Server by hostname)
 * and the endpoints they lead to.
 *
 *   clientId, clientSecret   the OAuth app's credentials
 *   hostname                 default github.com; a GitHub Enterprise Server host otherwise
 *   apiUrl                   REST API base; default https://api.github.com for github.com,
 *                            https://<hostname>/api/v3 for Enterprise
 *   oauthUrl                 base of /login/oauth/*; default https://<hostname>
 *   timeoutSeconds           per request to GitHub, default 10
 *   accessMode, allowedPrincipals   src/providers/access.ts (`group:<name>:<org>`,
 *                            `group:<name>:<org>/<team-slug>`, `user:<numeric id>`)
 *   allowInsecureUrlsForTests   TEST ONLY (default false): lets apiUrl and oauthUrl be
 *                            http://, for the test suite's loopback fake of GitHub. Never in
 *                            production: the client secret and user tokens would travel in
 *                            clear text.
 */
import * as z from 'zod';
import { accessSettingsShape } from '../access.js';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[0-9]{1,5})?$/;

const baseUrl = z.string().max(2048).refine(isBaseUrl, { error: 'must be an https:// URL without query, fragment or credentials' });

export const githubSettingsSchema = z
  .strictObject({
    clientId: z.string().min(1).max(512),
    clientSecret: z.string().min(1).max(4096),
    hostname: z.string().regex(HOSTNAME, { error: 'must be a host name such as github.com or github.example.com' }).default('github.com'),
    apiUrl: baseUrl.optional(),
    oauthUrl: baseUrl.optional(),
    timeoutSeconds: z.number().int().min(1).max(120).default(10),
    allowInsecureUrlsForTests: z.boolean().default(false),
    ...accessSettingsShape,
  })
  .superRefine((settings, context) => {
    if (settings.allowInsecureUrlsForTests) return;
    for (const field of ['apiUrl', 'oauthUrl'] as const) {
      const value = settings[field];
      if (value !== undefined && new URL(value).protocol !== 'https:') context.addIssue({ code: 'custom', path: [field], message: 'must be an https:// URL' });
    }
  });

export type GithubSettings = z.output<typeof githubSettingsSchema>;

export interface GithubEndpoints {
  /** `<oauth base>/login/oauth/authorize`. */
  readonly authorize: URL;
  /** `<oauth base>/login/oauth/access_token`. */
  readonly accessToken: URL;
  /** The REST API base, ending in `/`. */
  readonly api: URL;
}

export function githubEndpoints(settings: Pick<GithubSettings, 'hostname' | 'apiUrl' | 'oauthUrl'>): GithubEndpoints {
  const host = settings.hostname.toLowerCase();
  const oauth = withSlash(settings.oauthUrl ?? `https://${host}`);
  const api = withSlash(settings.apiUrl ?? (host === 'github.com' ? 'https://api.github.com' : `https://${host}/api/v3`));
  return {
    authorize: new URL('login/oauth/authorize', oauth),
    accessToken: new URL('login/oauth/access_token', oauth),
    api: new URL(api),
  };
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

function isBaseUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== '' && url.username === '' && url.password === '' && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}
