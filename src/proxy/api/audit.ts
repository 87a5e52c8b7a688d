/**
 * The audit trail of the REST API: one event per administrative action and per login, in the
 * same JSON lines as forwarded requests (`kind: "api"` tells them apart; audit-trail.ts writes
 * them).
 *
 * Design notes:
 * - A route opts in by naming its action first in its chain (`audited('user.create')`), so
 *   that refusals by `authenticate`/`requireAdmin` and failures of the handler are recorded
 *   too; the event is written when the response is finished (or the connection closed),
 *   with the status, the error code the error handler answered, the caller (user ID and
 *   token name) when authenticated, the client address and the user agent.
 * - What an action was about (`target`) is set by the handler with auditTarget, from values
 *   it chose: IDs, names, roles, the names of changed fields. Never a request body as a
 *   whole, so no password, token secret, cluster credential or cookie can reach the trail.
 *   Usernames attempted at login are recorded: they are not secrets, and an audit trail of
 *   logins must say whose account was tried.
 * - Polls of a device login that is still pending (LOGIN_PENDING) are not events.
 */
import type { RequestHandler, Response } from 'express';
import type { ErrorCode } from '../../errors.js';
import type { ClientAddressOf } from '../client-address.js';
import type { ApiAuditEvent, AuditValue } from './audit-event.js';
import { callerIfAny } from './authenticate.js';

interface PendingEvent {
  readonly action: string;
  readonly time: number;
  target: Record<string, AuditValue>;
  user: string | null;
  tokenName: string | null;
}

const PENDING = 'kubegateAudit';
const ERROR_CODE = 'kubegateErrorCode';
const MAX_USER_AGENT = 256;

/**
 * First in a route's chain: the request is an audited `action`; `paramsTarget` names what the
 * path says it is about (recorded even when authentication refuses the request).
 */
export function audited(action: string, paramsTarget?: (params: Readonly<Record<string, string | undefined>>) => Record<string, AuditValue>): RequestHandler {
  return (request, response, next) => {
    const target = paramsTarget?.(request.params as Record<string, string | undefined>) ?? {};
    response.locals[PENDING] = { action, time: Date.now(), target, user: null, tokenName: null } satisfies PendingEvent;
    next();
  };
}

/** The `:id` of a path as an audit target field, cut to a sane length. */
export const idParam =
  (field: string) =>
  (params: Readonly<Record<string, string | undefined>>): Record<string, AuditValue> => ({ [field]: (params['id'] ?? '').slice(0, 64) });

/** Adds what the action was about to the request's event (no-op for routes that are not audited). */
export function auditTarget(response: Response, target: Readonly<Record<string, AuditValue>>): void {
  const pending = response.locals[PENDING] as PendingEvent | undefined;
  if (pending !== undefined) pending.target = { ...pending.target, ...target };
}

/** The user and token the event names when there is no authenticated caller (a login). */
export function auditSubject(response: Response, user: string, tokenName: string | null): void {
  const pending = response.locals[PENDING] as PendingEvent | undefined;
  if (pending === undefined) return;
  pending.user = user;
  pending.tokenName = tokenName;
}

/** Called by the error handler: the code the client was answered. */
export function recordErrorCode(response: Response, code: ErrorCode): void {
  response.locals[ERROR_CODE] = code;
}

/** App-level: writes the event of every audited request once its response is done. */
export function apiAuditTrail(write: (event: ApiAuditEvent) => void, clientAddress: ClientAddressOf): RequestHandler {
  return (request, response, next) => {
    response.once('close', () => {
      const pending = response.locals[PENDING] as PendingEvent | undefined;
      if (pending === undefined) return;
      const code = (response.locals[ERROR_CODE] as ErrorCode | undefined) ?? null;
      if (code === 'LOGIN_PENDING') return;
      const caller = callerIfAny(response);
      const userAgent = request.headers['user-agent'];
      write({
        time: pending.time,
        action: pending.action,
        user: caller?.user.id ?? pending.user,
        tokenName: caller?.token.name ?? pending.tokenName,
        status: response.writableFinished ? response.statusCode : 499,
        code,
        address: clientAddress(request) ?? null,
        userAgent: userAgent === undefined ? null : userAgent.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, MAX_USER_AGENT),
        target: pending.target,
      });
    });
    next();
  };
}
