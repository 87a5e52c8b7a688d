import type http2 from 'node:http2';

/** Why keepAlive destroyed a session: its peer left a PING unanswered for too long. */
export class PingTimeoutError extends Error {
  constructor() {
    super('the tunnel peer stopped answering PINGs');
    this.name = 'PingTimeoutError';
  }
}

/**
 * PINGs the peer every `intervalMs`; a peer that leaves a PING unanswered for `timeoutMs`
 * is gone (a half-open TCP connection, a frozen process) and the session is destroyed with
 * a PingTimeoutError.
 */
export function keepAlive(session: http2.Http2Session, intervalMs: number, timeoutMs: number): NodeJS.Timeout {
  let waiting = false;
  let sentAt = 0;
  const timer = setInterval(() => {
    if (session.destroyed) {
      clearInterval(timer);
      return;
    }
    if (waiting) {
      if (Date.now() - sentAt >= timeoutMs) session.destroy(new PingTimeoutError());
      return;
    }
    waiting = true;
    sentAt = Date.now();
    const sent = session.ping((error) => {
      waiting = false;
      if (error !== null && !session.destroyed) session.destroy(error);
    });
    if (!sent) waiting = false;
  }, Math.min(intervalMs, timeoutMs)).unref();
  return timer;
}
