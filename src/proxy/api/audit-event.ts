/** What one audit line of the REST API says (the trail's format is in src/proxy/audit-trail.ts). */
import type { ErrorCode } from '../../errors.js';

export type AuditValue = string | number | boolean | null | readonly string[];

export interface ApiAuditEvent {
  /** Start of the request, epoch milliseconds. */
  readonly time: number;
  /** What was asked: `login`, `user.create`, `token.revoke`, … (README lists them). */
  readonly action: string;
  /** The authenticated caller's user ID (a successful login: the user who logged in), or null. */
  readonly user: string | null;
  /** The public name of the caller's token (a login: of the token issued), or null. */
  readonly tokenName: string | null;
  readonly status: number;
  /** The error code answered, or null for a success. */
  readonly code: ErrorCode | null;
  readonly address: string | null;
  readonly userAgent: string | null;
  readonly target: Readonly<Record<string, AuditValue>>;
}
