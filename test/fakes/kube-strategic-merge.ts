/**
 * Strategic merge patch (`application/strategic-merge-patch+json`), as kube-apiserver
 * applies it to built-in kinds: what `kubectl apply` sends when an object already exists.
 *
 * Design note: the merge follows the patch strategies of kube-schemas.ts, which mirror the
 * Go struct tags the real server uses. Maps merge key by key and `null` deletes; a list with
 * `x-kubernetes-patch-strategy: merge` and a merge key merges element by element (an element
 * `{"$patch": "delete", <key>: …}` removes one, `{"$patch": "replace"}` replaces the list);
 * a merged list of scalars is a set; every other list is replaced whole. Directives:
 * `$patch` (replace/delete/merge) in maps, `$retainKeys`, `$setElementOrder/<list>` and
 * `$deleteFromPrimitiveList/<list>`. A directive the real server does not know, or a merge
 * list element without its merge key, is refused (PatchError), as the real server refuses
 * it; directives never reach the stored object.
 */
import { resolveSchema } from './kube-schemas.js';
import type { SchemaNode } from './kube-schemas.js';

/** A patch the server refuses; `code` is the HTTP status kube-apiserver answers. */
export class PatchError extends Error {
  constructor(
    readonly code: 400 | 422,
    message: string,
  ) {
    super(message);
  }
}

type JsonMap = Record<string, unknown>;

const SET_ELEMENT_ORDER = '$setElementOrder/';
const DELETE_FROM_PRIMITIVE_LIST = '$deleteFromPrimitiveList/';

/** Applies `patch` to `original` (not modified) under the schema of the object's kind. */
export function strategicMergePatch(original: JsonMap, patch: unknown, schema: SchemaNode | undefined): JsonMap {
  if (!isMap(patch)) throw new PatchError(400, 'a strategic merge patch must be a JSON object');
  return mergeMap(original, patch, resolveSchema(schema));
}

function mergeMap(original: JsonMap, patch: JsonMap, schema: SchemaNode | undefined): JsonMap {
  const directive = patch['$patch'];
  if (directive !== undefined) {
    if (directive === 'replace') return mergeMap({}, withoutKey(patch, '$patch'), schema);
    if (directive === 'delete') return {};
    if (directive !== 'merge') throw new PatchError(400, `Unknown patch type: ${JSON.stringify(directive)} in map: ${JSON.stringify(patch)}`);
  }
  let result: JsonMap = { ...original };
  const retainKeys = patch['$retainKeys'];
  if (retainKeys !== undefined) {
    if (!Array.isArray(retainKeys) || !retainKeys.every((key) => typeof key === 'string')) throw new PatchError(400, 'doesn\'t support retainKeys format other than a list of strings');
    result = Object.fromEntries(Object.entries(result).filter(([key]) => retainKeys.includes(key)));
  }
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch' || key === '$retainKeys') continue;
    if (key.startsWith(DELETE_FROM_PRIMITIVE_LIST)) {
      const field = key.slice(DELETE_FROM_PRIMITIVE_LIST.length);
      if (!Array.isArray(value)) throw new PatchError(400, 'doesn\'t support primitive list deletion format other than a list');
      const current = result[field];
      if (Array.isArray(current)) result[field] = current.filter((item) => !value.some((gone) => sameValue(gone, item)));
      continue;
    }
    if (key.startsWith(SET_ELEMENT_ORDER)) {
      if (!Array.isArray(value)) throw new PatchError(400, 'doesn\'t support setElementOrder list format other than a list');
      continue; // applied with the list it orders, below
    }
    if (key.startsWith('$')) throw new PatchError(400, `unknown strategic merge patch directive ${JSON.stringify(key)}`);
    const field = resolveSchema(schema?.properties?.[key] ?? schema?.additionalProperties);
    if (value === null) {
      delete result[key];
      continue;
    }
    const current = result[key];
    if (isMap(value)) {
      const merged = mergeMap(isMap(current) ? current : {}, value, field);
      if (value['$patch'] === 'delete') delete result[key];
      else result[key] = merged;
      continue;
    }
    if (Array.isArray(value)) {
      const order = patch[`${SET_ELEMENT_ORDER}${key}`] as unknown[] | undefined;
      result[key] = mergeList(Array.isArray(current) ? current : [], value, field, order);
      continue;
    }
    result[key] = value;
  }
  return result;
}

function mergeList(original: readonly unknown[], patch: readonly unknown[], schema: SchemaNode | undefined, order: readonly unknown[] | undefined): unknown[] {
  const strategy = (schema?.['x-kubernetes-patch-strategy'] ?? '').split(',');
  if (!strategy.includes('merge')) return patch.map((item) => (isMap(item) ? mergeMap({}, item, resolveSchema(schema?.items)) : item));
  const mergeKey = schema?.['x-kubernetes-patch-merge-key'];
  if (mergeKey === undefined) {
    const merged = [...original];
    for (const item of patch) if (!merged.some((existing) => sameValue(existing, item))) merged.push(item);
    return sortBy(merged, order, (item) => item);
  }
  const itemSchema = resolveSchema(schema?.items);
  if (patch.some((item) => isMap(item) && item['$patch'] === 'replace')) {
    return patch.filter((item) => !(isMap(item) && item['$patch'] === 'replace')).map((item) => mergeMap({}, item as JsonMap, itemSchema));
  }
  const merged = [...original];
  for (const item of patch) {
    if (!isMap(item)) throw new PatchError(400, `a list with merge key ${mergeKey} must contain objects, not ${JSON.stringify(item)}`);
    if (!(mergeKey in item)) throw new PatchError(422, `map: ${JSON.stringify(item)} does not contain declared merge key: ${mergeKey}`);
    const index = merged.findIndex((existing) => isMap(existing) && sameValue(existing[mergeKey], item[mergeKey]));
    if (item['$patch'] === 'delete') {
      if (index >= 0) merged.splice(index, 1);
      continue;
    }
    if (index >= 0) merged[index] = mergeMap(merged[index] as JsonMap, item, itemSchema);
    else merged.push(mergeMap({}, item, itemSchema));
  }
  return sortBy(merged, order, (item) => (isMap(item) ? item[mergeKey] : item), (entry) => (isMap(entry) ? entry[mergeKey] : entry));
}

/** Orders `items` as `order` lists them; items it does not name keep their place after those. */
function sortBy(items: unknown[], order: readonly unknown[] | undefined, keyOfItem: (item: unknown) => unknown, keyOfEntry: (entry: unknown) => unknown = (entry) => entry): unknown[] {
  if (order === undefined) return items;
  const rank = (item: unknown): number => {
    const index = order.findIndex((entry) => sameValue(keyOfEntry(entry), keyOfItem(item)));
    return index < 0 ? order.length : index;
  };
  return items.map((item, index) => ({ item, index })).sort((a, b) => rank(a.item) - rank(b.item) || a.index - b.index).map(({ item }) => item);
}

function isMap(value: unknown): value is JsonMap {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function withoutKey(map: JsonMap, key: string): JsonMap {
  return Object.fromEntries(Object.entries(map).filter(([name]) => name !== key));
}
