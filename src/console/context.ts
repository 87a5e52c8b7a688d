/**
 * What the console's pages share: the REST API client, the CSRF tokens, the session
 * lifetime, the logger; and the per-request session that `requireSession` (session.ts)
 * establishes before any page handler runs.
 */
import type { IncomingMessage } from 'node:http';
import type { Request, Response } from 'express';
import { KubegateError, toKubegateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ConsoleApi } from './api-client.js';
import type { Me } from './api-types.js';
import type { Html } from './html.js';
import { renderPage } from './layout.js';
import type { Flash, NavItem } from './layout.js';
import type { CsrfTokens } from './security.js';

export interface ConsoleContext {
  readonly api: ConsoleApi;
  readonly csrf: CsrfTokens;
  /** Lifetime of the login token behind a console session. */
  readonly sessionTtlSeconds: number;
  readonly logger: Logger;
  /** The browser's address (see ConsoleOptions.clientAddress). */
  readonly clientAddress: (request: IncomingMessage) => string | undefined;
}

export interface ConsoleSession {
  /** The kubegate login token from the session cookie. */
  readonly token: string;
  readonly me: Me;
  /** The CSRF token for this session's forms. */
  readonly csrf: string;
}

const SESSION = 'kubegateConsoleSession';

export function setSession(response: Response, session: ConsoleSession): void {
  response.locals[SESSION] = session;
}

/** The session; a TypeError when the route is missing `requireSession`. */
export function sessionOf(response: Response): ConsoleSession {
  const session: unknown = response.locals[SESSION];
  if (session === undefined) throw new TypeError('sessionOf: the route is missing the requireSession middleware');
  return session as ConsoleSession;
}

/**
 * The session of an admin, for the admin overviews whose API answers other users too (the
 * provider list is public, members read their clusters): a 403 page, as the API gives for
 * the users list, instead of forms that would only be refused.
 */
export function adminSessionOf(response: Response): ConsoleSession {
  const session = sessionOf(response);
  if (session.me.globalRole !== 'admin') throw new KubegateError('FORBIDDEN', 'this needs the global role admin');
  return session;
}

/** Sends a page of the logged-in user. */
export function sendPage(response: Response, options: { title: string; current?: NavItem; flash?: Flash | undefined; status?: number }, content: Html): void {
  const session = sessionOf(response);
  const body = renderPage({ title: options.title, me: session.me, csrf: session.csrf, current: options.current, flash: options.flash }, content);
  response.status(options.status ?? 200).type('text/html; charset=utf-8').send(body);
}

/** Sends the browser to `path` after a successful form post (post/redirect/get). */
export function redirectAfterPost(response: Response, path: string): void {
  response.redirect(303, path);
}

/** A form field as a string; BAD_REQUEST naming it when it is missing or repeated. */
export function formField(request: Request, name: string, options: { optional?: boolean } = {}): string {
  const body = (request.body ?? {}) as Record<string, unknown>;
  const value = body[name];
  if (value === undefined || value === '') {
    if (options.optional === true) return '';
    throw new KubegateError('BAD_REQUEST', `${name} is required`, { field: name });
  }
  if (typeof value !== 'string') throw new KubegateError('BAD_REQUEST', `${name} must be given once`, { field: name });
  return value;
}

/** The browser's address, passed to the API for its login limits. */
export function remoteAddressOf(ctx: ConsoleContext, request: Request): string | undefined {
  return ctx.clientAddress(request);
}

/** A route parameter as a string. */
export function paramOf(request: Request, name: string): string {
  const value: unknown = request.params[name];
  return typeof value === 'string' ? value : '';
}

/** The message of `?done=<key>` after a redirect, from the page's own fixed table. */
export function doneFlash(request: Request, messages: Readonly<Record<string, string>>): Flash | undefined {
  const key = request.query['done'];
  if (typeof key !== 'string' || !Object.hasOwn(messages, key)) return undefined;
  return { kind: 'success', message: messages[key]! };
}

/**
 * Runs a form's action. A refusal (a 4xx KubegateError, usually the API's: a bad field, a
 * conflict, forbidden) shows the form's page again with the message and that status, so
 * what was typed is not lost behind an error page; anything else propagates.
 */
export async function submitForm(action: () => Promise<void>, showAgain: (flash: Flash, status: number) => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    const failure = toKubegateError(error);
    if (failure.status >= 500) throw error;
    await showAgain({ kind: 'error', message: failure.message }, failure.status);
  }
}
