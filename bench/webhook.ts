/**
 * Webhook scenarios (TokenReviews/s warm and cold, a $1 scrypt token): pending until
 * `kubegate webhook` can be started here.
 */
import type { WebhookResult } from './report.js';
import type { BenchSettings } from './scenarios.js';
import type { Tls } from './targets.js';

export async function webhookScenario(_tls: Tls, _settings: BenchSettings, _log: (message: string) => void): Promise<WebhookResult> {
  return { status: 'pending', reason: 'src/webhook is being built by another agent' };
}
