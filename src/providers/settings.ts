/**
 * Decoding a provider's free-form `settings` with its own zod schema: every problem at once,
 * each as `settings.<field>: <problem>`, as CONFIG_INVALID whose `field` is the first one
 * (createProviders re-addresses it from the top, `providers[2].settings.issuer`). Problems
 * describe the rule and never quote the value: settings hold client secrets.
 */
import * as z from 'zod';
import { KubegateError } from '../errors.js';

export function parseProviderSettings<S extends z.ZodType>(schema: S, settings: Readonly<Record<string, unknown>>): z.output<S> {
  const result = schema.safeParse(settings);
  if (result.success) return result.data;
  const issues = result.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: fieldOf([...issue.path, key]), problem: 'is not a setting of this provider type' }))
      : [{ field: fieldOf(issue.path), problem: issue.message }],
  );
  const first = issues[0]?.field ?? 'settings';
  throw new KubegateError('CONFIG_INVALID', issues.map((issue) => `${issue.field}: ${issue.problem}`).join('; '), { field: first });
}

function fieldOf(path: readonly PropertyKey[]): string {
  let text = 'settings';
  for (const segment of path) text += typeof segment === 'number' ? `[${segment}]` : `.${String(segment)}`;
  return text;
}
